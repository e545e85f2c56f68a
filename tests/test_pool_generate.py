"""One image on a pool of servers: which server draws it, what it costs, over real HTTP."""

from __future__ import annotations

import asyncio

import pytest

import pixery_widgets as px
from pixery_widgets import ConnectionFailedError, ModelUnavailableError, Settings
from pixery_widgets.core.types import ServerState
from pixery_widgets.providers.pool import ServerView, rank_servers
from pixery_widgets.providers.servers import sighting
from pixery_widgets.session.ledger import LEDGER


def run(coro):
    return asyncio.run(coro)


def drawn(server) -> list[str]:
    """The prompts a simulator was asked to draw, in order."""
    return [r.json["prompt"] for r in server.request_log if r.path == "/generate"]


def pool_settings(pool, tmp_path, *extra: str, **kw) -> Settings:
    return Settings(selfhosted_urls=(*pool.urls, *extra), archive_dir=tmp_path, **kw)


def view(url, *, up=True, loaded=False, has=None, lora=None, queue=0) -> ServerView:
    return ServerView(url, up, loaded, has, lora, queue)


@pytest.mark.parametrize(
    ("views", "expected"),
    [
        # an idle server with the model loaded first, then idle ones that have it
        ([view("a"), view("b", loaded=True), view("c")], ["b", "a", "c"]),
        # busy ones last, by queue, the one with the model loaded first among equals
        (
            [view("a", queue=2), view("b", queue=1), view("c", queue=1, loaded=True)],
            ["c", "b", "a"],
        ),
        # an idle server that must load the model beats a busy one that has it
        ([view("a", loaded=True, queue=1), view("b")], ["b", "a"]),
        # down, without the model, or without the LoRA: not at all
        (
            [view("a", up=False), view("b", has=False), view("c", lora=False), view("d")],
            ["d"],
        ),
        ([view("a", up=False)], []),
    ],
)
def test_the_picking_rule(views, expected):
    assert rank_servers(views) == expected


def test_an_image_goes_to_the_idle_server_that_has_its_model_loaded(pool_factory, tmp_path):
    pool = pool_factory(3, start_loaded=("animagine", "pony", "noobai"))
    settings = pool_settings(pool, tmp_path)
    g = run(px.agenerate("for the pony server", "pony", settings=settings, archive=False))
    assert g.model == "pony"
    assert [drawn(s) for s in pool] == [[], ["for the pony server"], []]


def test_else_an_idle_server_that_has_it_downloaded(pool_factory, tmp_path):
    pool = pool_factory(3, start_loaded=("animagine", "animagine", "animagine"))
    pool[0].config.missing = {"noobai"}
    settings = pool_settings(pool, tmp_path)
    run(px.agenerate("needs a load", "noobai", settings=settings, archive=False))
    assert [drawn(s) for s in pool] == [[], ["needs a load"], []]
    # drawn there, the model is loaded there now: the next one follows it
    assert sighting(pool.urls[1]).loaded == "noobai"
    run(px.agenerate("again", "noobai", settings=settings, archive=False))
    assert drawn(pool[1]) == ["needs a load", "again"]


def test_else_the_server_with_the_shortest_queue(pool_factory, tmp_path):
    pool = pool_factory(2, gen_seconds=0.3)
    settings = pool_settings(pool, tmp_path)

    async def three_at_once():
        await px.acheck_servers(settings)
        return await asyncio.gather(
            *(px.agenerate(p, settings=settings, archive=False) for p in ("one", "two", "three"))
        )

    assert len(run(three_at_once())) == 3
    assert [drawn(s) for s in pool] == [["one", "three"], ["two"]]


def test_a_server_that_refuses_is_skipped_and_marked_offline(pool_factory, tmp_path):
    pool = pool_factory(2, start_loaded=("pony", "animagine"))
    settings = pool_settings(pool, tmp_path)
    run(px.acheck_servers(settings))  # both seen healthy: the pony one would be first
    pool.stop(0)
    g = run(px.agenerate("still drawn", "pony", settings=settings, archive=False))
    assert g.model == "pony" and drawn(pool[1]) == ["still drawn"]
    assert sighting(pool.urls[0]).status.state is ServerState.OFFLINE
    assert sighting(pool.urls[0]).status.reason == "connection refused"


def test_when_no_server_can_draw_the_error_says_what_each_one_said(
    pool_factory, tmp_path, closed_port_url
):
    pool = pool_factory(1)
    pool.stop()
    settings = pool_settings(pool, tmp_path, closed_port_url)
    with pytest.raises(ConnectionFailedError) as info:
        run(px.agenerate("nobody", settings=settings, archive=False))
    message = info.value.message
    assert "None of your 2 self-hosted servers" in message
    assert message.count("connection refused") == 2 and closed_port_url in message


def test_a_model_no_server_has_downloaded_is_refused_in_words(pool_factory, tmp_path):
    pool = pool_factory(2, missing={"noobai"})
    with pytest.raises(ModelUnavailableError, match="noobai is not downloaded on any"):
        run(px.agenerate("x", "noobai", settings=pool_settings(pool, tmp_path), archive=False))
    assert [drawn(s) for s in pool] == [[], []]  # refused before a slow /generate


def test_a_lora_is_checked_against_the_servers_that_are_up(pool_factory, tmp_path):
    pool = pool_factory(2, loras=["detail_tweaker"])
    pool.stop(0)
    settings = pool_settings(pool, tmp_path)
    g = run(px.agenerate("with a lora", lora="detail_tweaker", settings=settings, archive=False))
    assert g.params.get("lora_name") == "detail_tweaker" and drawn(pool[1]) == ["with a lora"]
    with pytest.raises(px.UnknownLoraError):
        run(px.agenerate("x", lora="not_there", settings=settings, archive=False))


def test_an_image_costs_the_gpu_time_it_used(pool_factory, tmp_path):
    pool = pool_factory(2, gen_seconds=0.1)
    settings = pool_settings(pool, tmp_path, selfhosted_cost_per_hour=0.36)
    before = (LEDGER.selfhosted_usd, LEDGER.cloud_usd, LEDGER.selfhosted_images)
    g = run(px.agenerate("paid by the hour", settings=settings))
    assert g.cost_usd == pytest.approx(0.36 * g.elapsed_s / 3600)
    assert g.cost_usd > 0
    assert LEDGER.selfhosted_usd == pytest.approx(before[0] + g.cost_usd)
    assert LEDGER.cloud_usd == pytest.approx(before[1])
    assert LEDGER.selfhosted_images == before[2] + 1
    assert "self-hosted GPU time" in LEDGER.summary() and "cloud" in LEDGER.summary()
    assert px.Archive(tmp_path, settings=settings).get(g.id).cost_usd == pytest.approx(g.cost_usd)
    free = run(px.agenerate("no rate", settings=pool_settings(pool, tmp_path), archive=False))
    assert free.cost_usd == 0.0
