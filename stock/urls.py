from django.urls import path

from stock import api

urlpatterns = [
    path("receipts/", api.ReceiptsApi.as_view(), name="receipts"),
    path("stock/", api.StockBalancesApi.as_view(), name="stock-balances"),
    path("stock/movements/", api.StockMovementsApi.as_view(), name="stock-movements"),
    path("stock/transfers/", api.StockTransferApi.as_view(), name="stock-transfers"),
    path("stock/write-offs/", api.StockWriteOffApi.as_view(), name="stock-write-offs"),
    path(
        "stock/quarantine-resolutions/",
        api.StockQuarantineResolutionApi.as_view(),
        name="stock-quarantine-resolutions",
    ),
]
