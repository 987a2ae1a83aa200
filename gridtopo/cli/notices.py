"""``gridtopo notices …``: customer notices — the webhooks they are pushed to, the delivery
worker, dead letters (:mod:`gridtopo.outages.webhooks`).

    gridtopo notices webhook add sms-gateway https://sms.example.cn/hook   # prints the secret once
    gridtopo notices webhook list
    gridtopo notices webhook disable sms-gateway
    gridtopo notices deliver --once            # release what is due and deliver it, once
    gridtopo notices deliver --seconds 1       # the worker outside the API (until Ctrl-C)
    gridtopo notices dead --webhook sms-gateway
    gridtopo notices requeue --webhook sms-gateway 17 18
    gridtopo notices status 17                 # a notice's delivery to each webhook
    gridtopo notices feed --after 0 --limit 100  # released notices in order (the pull feed)
    gridtopo notices opt-out 0300100001505     # no more notices to this customer (--undo)
"""

from __future__ import annotations

import getpass
import json
import signal
import threading
from typing import Any

import click

from gridtopo.cli.output import emit, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.outages import webhooks as lib
from gridtopo.outages.notices import set_opt_out
from gridtopo.outages.outbox import FEED_LIMIT, feed, release_due


def _show_hook(h: dict[str, Any]) -> None:
    counts = h.get("deliveries")
    click.echo(f"{h['name']} {'active' if h['active'] else 'disabled'} {h['url']} "
               f"secret {h['secret_prefix']}"
               + (f", deliveries pending {counts['pending']} delivered {counts['delivered']} "
                  f"dead {counts['dead']}" if counts else ""))


def _show_delivery(d: dict[str, Any]) -> None:
    click.echo(f"notice {d['notice_id']} -> {d['webhook']}: {d['status']}, {d['attempts']} "
               f"attempt(s)" + (f", last {d['last_status'] or ''} {d['last_error'] or ''}".rstrip()
                                if d["last_status"] or d["last_error"] else ""))


@click.group()
def notices() -> None:
    """Customer notices: the feed, opt-outs, webhooks, delivery, dead letters."""


@notices.group()
def webhook() -> None:
    """Receivers notices are pushed to (signed POSTs, retried until delivered or dead)."""


@webhook.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--secret", help="Signing secret (16-128 characters); generated when not given.")
@json_option
@pass_settings
def webhook_add(settings: Settings, name: str, url: str, secret: str | None,
                as_json: bool) -> None:
    """Register a webhook; prints its signing secret, the only time it is shown."""
    result = lib.add_webhook(settings.model_engine(), name, url, secret=secret,
                             created_by=f"cli:{getpass.getuser()}")

    def human(h: dict[str, Any]) -> None:
        click.echo(f"webhook {h['name']} added: {h['url']}")
        click.echo(f"secret (shown once, keep it): {h['secret']}")

    emit(result, as_json, human)


@webhook.command("list")
@json_option
@pass_settings
def webhook_list(settings: Settings, as_json: bool) -> None:
    """The webhooks, their secrets' prefixes and deliveries by status."""
    result = lib.list_webhooks(settings.model_engine())

    def human(hooks: list[dict[str, Any]]) -> None:
        click.echo(f"{len(hooks)} webhook(s)")
        for h in hooks:
            _show_hook(h)

    emit(result, as_json, human)


@webhook.command("disable")
@click.argument("name")
@json_option
@pass_settings
def webhook_disable(settings: Settings, name: str, as_json: bool) -> None:
    """Stop pushing notices to a webhook (its pending deliveries wait until it is enabled)."""
    emit(lib.set_active(settings.model_engine(), name, False), as_json, _show_hook)


@webhook.command("enable")
@click.argument("name")
@json_option
@pass_settings
def webhook_enable(settings: Settings, name: str, as_json: bool) -> None:
    """Push notices to a disabled webhook again."""
    emit(lib.set_active(settings.model_engine(), name, True), as_json, _show_hook)


@webhook.command("remove")
@click.argument("name")
@json_option
@pass_settings
def webhook_remove(settings: Settings, name: str, as_json: bool) -> None:
    """Remove a webhook and its deliveries."""
    result = lib.remove_webhook(settings.model_engine(), name)
    emit(result, as_json, lambda r: click.echo(
        f"webhook {r['name']} removed with {r['deliveries_removed']} deliveries"))


@notices.command("deliver")
@click.option("--once", is_flag=True, help="One pass, then exit (the default is to loop).")
@click.option("--seconds", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Pause between passes.")
@click.option("--batch", type=click.IntRange(1, 5000), default=lib.RetryPolicy.batch,
              show_default=True, help="Notices per POST at most.")
@json_option
@pass_settings
def deliver(settings: Settings, once: bool, seconds: float, batch: int, as_json: bool) -> None:
    """Release the notices come due and push the due deliveries to the webhooks: once, or
    every --seconds until interrupted (SIGINT/SIGTERM finish the batch under way). Looping,
    each pass that did something prints a line (a JSON object a line with --json)."""
    engine = settings.model_engine()
    policy = lib.RetryPolicy(batch=batch)
    if once:
        result = {**release_due(engine), **lib.deliver_due(engine, policy=policy)}
        emit(result, as_json, lambda r: click.echo(", ".join(f"{k} {v}" for k, v in r.items())))
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def report(counts: dict[str, int]) -> None:
        if any(counts.values()):
            click.echo(json.dumps(counts) if as_json
                       else ", ".join(f"{k} {v}" for k, v in counts.items()))

    lib.run_deliveries(engine, seconds=seconds, stop=stop, policy=policy, on_pass=report)


@notices.command("dead")
@click.option("--webhook", "webhook_name", metavar="NAME", help="Only this webhook's.")
@click.option("--limit", type=click.IntRange(1, lib.DEAD_LIMIT), default=100, show_default=True)
@json_option
@pass_settings
def dead(settings: Settings, webhook_name: str | None, limit: int, as_json: bool) -> None:
    """Dead deliveries: notices a webhook did not take after the last attempt."""
    result = lib.dead_letters(settings.model_engine(), webhook_name, limit=limit)

    def human(r: dict[str, Any]) -> None:
        click.echo(f"{r['total']} dead deliver(ies)")
        for d in r["items"]:
            _show_delivery(d)

    emit(result, as_json, human)


@notices.command("requeue")
@click.option("--webhook", "webhook_name", metavar="NAME", help="Only this webhook's.")
@click.argument("notice_ids", nargs=-1, type=int, metavar="[NOTICE_ID]...")
@json_option
@pass_settings
def requeue(settings: Settings, webhook_name: str | None, notice_ids: tuple[int, ...],
            as_json: bool) -> None:
    """Send dead deliveries again (of these notices, of this webhook, or all), at once."""
    result = lib.requeue(settings.model_engine(), webhook=webhook_name,
                         ids=list(notice_ids) or None)
    emit(result, as_json, lambda r: click.echo(f"{r['requeued']} deliver(ies) requeued"))


@notices.command("status")
@click.argument("notice_id", type=int)
@json_option
@pass_settings
def status(settings: Settings, notice_id: int, as_json: bool) -> None:
    """A notice's status and its delivery to each webhook."""
    result = lib.delivery_status(settings.model_engine(), notice_id)

    def human(r: dict[str, Any]) -> None:
        click.echo(f"notice {r['notice_id']} {r['status']}"
                   + (f" seq {r['seq']}" if r["seq"] is not None else ""))
        for d in r["deliveries"]:
            _show_delivery(d)

    emit(result, as_json, human)


@notices.command("feed")
@click.option("--after", type=click.IntRange(min=0), default=0, show_default=True,
              help="Cursor: the last seq already read.")
@click.option("--limit", type=click.IntRange(1, FEED_LIMIT), default=100, show_default=True)
@click.option("--personal", is_flag=True, help="Phone numbers unmasked.")
@json_option
@pass_settings
def feed_command(settings: Settings, after: int, limit: int, personal: bool,
                 as_json: bool) -> None:
    """Released notices after the cursor AFTER, in order (what GET /v1/notifications gives);
    ``next`` is the cursor to ask with next time."""
    page = feed(settings.model_engine(), after=after, limit=limit, reveal=personal)

    def human(r: dict[str, Any]) -> None:
        for n in r["items"]:
            click.echo(f"{n['seq']:>8} {n['kind']:<12} event {n['event_id']} "
                       f"{n['customer_id']} {n['channel']} {n['recipient']}: {n['text']}")
        click.echo(f"next {r['next']}")

    emit(page, as_json, human)


@notices.command("opt-out")
@click.argument("customer_ids", nargs=-1, required=True)
@click.option("--undo", is_flag=True, help="The customers want notices again.")
@json_option
@pass_settings
def opt_out(settings: Settings, customer_ids: tuple[str, ...], undo: bool,
            as_json: bool) -> None:
    """Record that CUSTOMER_IDS want no outage notices (or, with --undo, want them again)."""
    count = set_opt_out(settings.model_engine(), customer_ids, not undo, by=getpass.getuser())
    emit({"customers": count, "opt_out": not undo}, as_json, lambda r: click.echo(
        f"{r['customers']} customer(s) {'opted out' if r['opt_out'] else 'opted in again'}"))
