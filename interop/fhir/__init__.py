"""FHIR R5 at /api/v1/fhir/: lots as BiologicallyDerivedProduct, treatments as Procedure, adverse
events as AdverseEvent, traces as searchset Bundles, built as `fhir.resources` models so every
answer is the standard's shape by construction."""
