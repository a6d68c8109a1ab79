/* The treatment at the chair: the scan field and the camera.
 *
 * A keyboard-wedge scanner types the vial's GS1 string and ends it with Enter. Enter in the scan
 * field never submits the form: it resolves the scan (htmx posts it to the scan endpoint, which
 * answers whether the lot may be used here and adds it as a line), then empties the field for
 * the next vial. The camera reads the vial's GS1 DataMatrix with zxing-wasm (vendored; its .wasm
 * is served from this site, never fetched elsewhere) and feeds the text into the same path.
 */
(function () {
  "use strict";

  function resolve(field) {
    if (!field.value.trim()) return;
    window.htmx.trigger(field, "resolve");
  }

  document.addEventListener("keydown", function (event) {
    var field = event.target;
    if (!(field instanceof HTMLInputElement) || !field.hasAttribute("data-scan")) return;
    if (event.key === "Enter") {
      event.preventDefault();
      resolve(field);
    }
  });

  // After the answer arrives the field is emptied and keeps the focus: the next vial can follow.
  document.addEventListener("htmx:afterRequest", function (event) {
    var field = event.detail && event.detail.elt;
    if (field instanceof HTMLInputElement && field.hasAttribute("data-scan")) {
      field.value = "";
      field.focus();
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    var remove = target.closest("[data-remove-line]");
    if (remove) {
      var line = remove.closest("li");
      if (line) line.remove();
      var scan = document.querySelector("[data-scan]");
      if (scan) scan.focus();
      return;
    }
    var start = target.closest("[data-camera]");
    if (start) {
      startCamera(start);
      return;
    }
    if (target.closest("[data-camera-stop]")) stopCamera();
  });

  var stream = null;
  var prepared = false;

  function say(text) {
    var status = document.getElementById("camera-status");
    if (status) status.textContent = text;
  }

  function stopCamera() {
    if (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
    }
    var box = document.getElementById("camera");
    if (box) box.hidden = true;
  }

  async function startCamera(button) {
    var zxing = window.ZXingWASM;
    var field = document.getElementById(button.dataset.target);
    var box = document.getElementById("camera");
    var video = document.getElementById("camera-video");
    if (!zxing || !field || !box || !video) return;
    if (!prepared) {
      var wasm = button.dataset.wasm;
      zxing.prepareZXingModule({
        overrides: {
          locateFile: function (path, prefix) {
            return path.endsWith(".wasm") ? wasm : prefix + path;
          },
        },
      });
      prepared = true;
    }
    box.hidden = false;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "environment" },
        audio: false,
      });
    } catch (error) {
      say(button.dataset.noCamera || "The camera could not be opened: scan with the scanner instead.");
      return;
    }
    video.srcObject = stream;
    await video.play();
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    while (stream) {
      if (video.videoWidth) {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        context.drawImage(video, 0, 0);
        var frame = context.getImageData(0, 0, canvas.width, canvas.height);
        var results = await zxing.readBarcodes(frame, {
          formats: ["DataMatrix"],
          tryHarder: true,
          maxNumberOfSymbols: 1,
        });
        var found = results.find(function (result) { return result.isValid && result.text; });
        if (found) {
          stopCamera();
          field.value = found.text;
          resolve(field);
          return;
        }
      }
      await new Promise(function (done) { setTimeout(done, 120); });
    }
  }
})();
