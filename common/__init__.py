"""What every app shares and no app owns: errors, API fields and views, CSV, validators,
triggers, the admin's service forms. Imports no app of the project."""
