"""GS1 EPCIS 2.0 at /api/v1/epcis/events/: the stock ledger's movements as ObjectEvents in an
EPCISDocument (JSON-LD), named in the GS1 Core Business Vocabulary, so a manufacturer's or a
regulator's EPCIS repository can take a clinic's receipts, transfers, uses and destructions of a
lot without a mapping of its own. Treatment use is a lot, a quantity, a clinic and a time; never a
patient."""
