"""What the lots admin modules share."""

# The intermediate page on which a signed decision is made (donor eligibility, lot decisions).
SIGNATURE_TEMPLATE = "admin/lots/signature.html"
