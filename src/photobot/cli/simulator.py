"""`photobot simulator`: run the kie.ai simulator as a standalone server (demos, benchmarks, other processes).

Knobs given here are the start values; change them at runtime with `POST /_sim/config` (see docs/providers.md).
"""

from __future__ import annotations

import click

from photobot.providers.simulator import SimConfig, run_standalone


@click.command("simulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port to listen on.")
@click.option("--callback-delay", default=2.0, show_default=True, type=float, help="Seconds until the callback.")
@click.option("--callback-jitter", default=0.0, show_default=True, type=float, help="Extra random delay (s).")
@click.option("--hmac-key", default=None, envvar="PHOTOBOT_SIMULATOR_HMAC_KEY", help="Sign callbacks with this key.")
@click.option("--valid-key", "valid_keys", multiple=True, help="Accept only these API keys (repeatable).")
@click.option("--rate-limit", default=20, show_default=True, type=int, help="createTask calls per window per key.")
@click.option("--rate-window", default=10.0, show_default=True, type=float, help="Rate-limit window (s).")
@click.option("--failure-rate", default=0.0, show_default=True, type=float, help="Share of tasks that fail (501).")
@click.option("--drop-rate", default=0.0, show_default=True, type=float, help="Share of callbacks never sent.")
@click.option("--duplicates", default=1, show_default=True, type=int, help="Send each callback N times.")
@click.option("--maintenance", is_flag=True, help="Answer every createTask with 455.")
@click.option("--result-pad-bytes", default=0, show_default=True, type=int, help="Pad results to this size.")
@click.option("--result-host", default=None, help="Base URL for result/upload URLs (default: this server).")
def simulator(
    host: str,
    port: int,
    callback_delay: float,
    callback_jitter: float,
    hmac_key: str | None,
    valid_keys: tuple[str, ...],
    rate_limit: int,
    rate_window: float,
    failure_rate: float,
    drop_rate: float,
    duplicates: int,
    maintenance: bool,
    result_pad_bytes: int,
    result_host: str | None,
) -> None:
    """Run the kie.ai (and small fal.ai) simulator until Ctrl-C."""
    config = SimConfig(
        valid_keys=list(valid_keys) or None,
        rate_limit=rate_limit,
        rate_window_s=rate_window,
        callback_delay_s=callback_delay,
        callback_jitter_s=callback_jitter,
        hmac_key=hmac_key,
        failure_rate=failure_rate,
        drop_rate=drop_rate,
        duplicate_callbacks=duplicates,
        maintenance=maintenance,
        result_pad_bytes=result_pad_bytes,
        result_host=result_host,
    )
    click.echo(f"kie.ai simulator on http://{host}:{port} (admin: /_sim/config, /_sim/stats)")
    run_standalone(config, host=host, port=port)


command = simulator


@click.command("mercadopago-simulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8766, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--webhook-secret",
    default=None,
    help="Sign notifications with this secret (default: PHOTOBOT_MERCADOPAGO_WEBHOOK_SECRET, "
    "else the one derived from PHOTOBOT_SECRET_KEY).",
)
def mercadopago_simulator(host: str, port: int, webhook_secret: str | None) -> None:
    """Run the Mercado Pago simulator (checkout page, payments API, signed notifications) until Ctrl-C."""
    from photobot.cli.common import settings_from_env
    from photobot.payments.gateway import webhook_secret as derived_secret
    from photobot.payments.simulator import SIMULATOR_ACCESS_TOKEN, run_standalone

    secret = webhook_secret or derived_secret(settings_from_env()) or ""
    click.echo(f"Mercado Pago simulator on http://{host}:{port} (access token {SIMULATOR_ACCESS_TOKEN})")
    run_standalone(SIMULATOR_ACCESS_TOKEN, secret, host=host, port=port)


mercadopago_command = mercadopago_simulator
