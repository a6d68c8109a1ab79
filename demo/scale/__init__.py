"""A realistic data set of any size, built by PostgreSQL itself (`manage.py scale_generate`).

Every row is written by `INSERT ... SELECT` over `generate_series` and the generator's own plan
tables, so memory stays flat and the time is PostgreSQL's: no Python object per treatment. The
rows obey every rule the services enforce (lots released with donors, QC results and
certificates, each release and each donor determination signed; receipts at each clinic that
cover what its treatments drew, balances equal to the ledger; practitioners practising at the
clinic and licensed in its jurisdiction on the day; patients of the treating clinic), and carry
what the database itself would have added: a history event per row and a link of the audit
chain per event, written set-based exactly as the triggers write them.

Why not through the triggers: a row trigger per history event and a deferred foreign-key check
per row make a load of 10^7 treatments take hours. The load runs with
`session_replication_role = replica` (triggers and foreign-key checks off, so it needs a
superuser or the right to set that parameter), writes the events and chain links itself, and
proves every foreign key of the rows it wrote with anti-joins before it commits.

Modules, one per area: `base` (sizes, the load's shared state, ids, progress), `providers`,
`lots`, `signing` (the electronic signatures on releases and donor determinations), `treatments`,
`stock`, `history` (events and the audit chain), `integrity` (foreign keys), `generate` (the
phases in order).
"""
