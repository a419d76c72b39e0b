"""Payments: credit packs bought through Mercado Pago Checkout Pro, confirmed by webhook, granted exactly once.

- `mercadopago.py`: the REST client (preferences, payments, search); amounts as integer cents;
- `purchases.py`: the one owner of purchase rows (create, apply a payment, expire);
- `packs.py`: packs on sale (CLI and admin API);
- `gateway.py`: `Payments.open(runtime)`: the client, the webhook secret, or the built-in simulator;
- `reconcile.py`: the worker's look-up of pending purchases and sender of operator alerts;
- `simulator.py`: a Mercado Pago stand-in with a checkout page and signed notifications.
The webhook (`webhooks/mercadopago.py`) verifies `x-signature` with `signing.verify_mercadopago_signature`.
"""
