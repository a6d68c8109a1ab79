"""Stock: a receipt of each lot at each clinic that used it, covering what its treatments drew
plus a few spare units, the receipt's ledger row, and the balance the ledger sums to.

Receipt j of lot i goes to the lot's clinic (o + j) mod clinics, two days before the lot's first
use; its quantity is the units the treatments drew there (`scale_used`, summed while they were
written) plus one to five spare. The balance left is the spare: the ledger (one receipt row in,
one row out per treatment line) and the balances agree, and never went negative.
"""

from __future__ import annotations

from demo.scale.base import Load
from demo.scale.lots import at_utc
from demo.scale.providers import clinic_administrator

RECEIPTS_SQL = """
SELECT p.receipt_start + j AS r, p.lot_id, p.manufactured_on,
       %(providers_clinic_first)s + (p.o + j) %% %(clinics)s AS clinic_id,
       (p.o + j) %% %(clinics)s AS c,
       u.used + 1 + pg_temp.scale_hash(p.receipt_start + j, %(seed)s * 100 + 10) %% 5 AS quantity
FROM scale_lot p
CROSS JOIN LATERAL generate_series(0, p.pairs - 1) j
JOIN scale_used u ON u.lot_id = p.lot_id
                 AND u.clinic_id = %(providers_clinic_first)s + (p.o + j) %% %(clinics)s
"""


def stock_create(load: Load) -> None:
    receipts = int(load.value("SELECT coalesce(sum(pairs), 0) FROM scale_lot"))
    load.reserve("stock_receipt", receipts)
    load.reserve("stock_stockbalance", receipts)
    with load.phase("stock", 3):
        load.execute(
            f"""
            INSERT INTO stock_receipt (id, quantity, decision, package_intact, label_readable,
                                       transport_min_celsius, transport_max_celsius,
                                       storage_location, received_at, notes, clinic_id, lot_id,
                                       received_by_id)
            SELECT %(stock_receipt_first)s + r, quantity, 'accept', true, true, -75, -65,
                   'Freezer ' || (1 + r %% 3), {at_utc("manufactured_on + 12", 15)}, '',
                   clinic_id, lot_id, {clinic_administrator()}
            FROM ({RECEIPTS_SQL}) received ORDER BY r
            """  # noqa: S608 - the SQL is ours
        )
        load.progress.advance()
        load.execute(
            """
            INSERT INTO stock_stockmovement (id, state, delta, kind, reason, occurred_at,
                                             actor_id, clinic_id, counterpart_clinic_id, lot_id,
                                             receipt_id)
            SELECT %(stock_stockmovement_first)s + (r.id - %(stock_receipt_first)s), 'accepted',
                   r.quantity, 'receipt', '', r.received_at, r.received_by_id, r.clinic_id, NULL,
                   r.lot_id, r.id
            FROM stock_receipt r WHERE r.id >= %(stock_receipt_first)s ORDER BY r.id
            """
        )
        load.progress.advance()
        load.execute(
            """
            INSERT INTO stock_stockbalance (id, state, quantity, clinic_id, lot_id)
            SELECT %(stock_stockbalance_first)s + (r.id - %(stock_receipt_first)s), 'accepted',
                   r.quantity - u.used, r.clinic_id, r.lot_id
            FROM stock_receipt r
            JOIN scale_used u ON u.lot_id = r.lot_id AND u.clinic_id = r.clinic_id
            WHERE r.id >= %(stock_receipt_first)s ORDER BY r.id
            """
        )
        load.progress.advance()
