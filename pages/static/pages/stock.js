// Stock pages: a scanner ends its text with Enter. In the scan field that Enter looks the lot up
// (htmx, hx-trigger="keydown[key=='Enter']") and must never submit the receipt form.
document.addEventListener("keydown", function (event) {
  if (event.key === "Enter" && event.target instanceof HTMLElement && event.target.matches("[data-scan]")) {
    event.preventDefault();
  }
});
document.addEventListener("click", function (event) {
  if (event.target instanceof HTMLElement && event.target.closest("[data-print]")) {
    window.print();
  }
});
