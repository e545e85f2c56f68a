"""The panel and its parts, without a browser, against the real simulator.

Each test runs its body on an asyncio loop (``asyncio.run``) so the panel's
background tasks (health checks, generations, pre-warming) really run.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from env_helpers import Env
from panel_helpers import ready, run, until
from PIL import Image

from pixery_widgets.core.types import ServerState
from pixery_widgets.session.ledger import LEDGER
from pixery_widgets.session.menu import MenuEntry
from pixery_widgets.widgets import (
    ImageOutput,
    LoraPicker,
    ModelDropdown,
    PixeryPanel,
    StatusIndicator,
)
from pixery_widgets.widgets.image_output import DISPLAY_SIDE


def ids(panel: PixeryPanel) -> list[str]:
    return [e.id for e in panel.menu]


def entry(panel: PixeryPanel, model_id: str) -> MenuEntry:
    return next(e for e in panel.menu if e.id == model_id)


def dropdown_entry(panel: PixeryPanel, model_id: str) -> dict[str, Any]:
    return next(e for e in panel.model_dropdown.entries if e["id"] == model_id)


def status_line(panel: PixeryPanel) -> str:
    return panel.status_indicator.text.value


def healthy(panel: PixeryPanel) -> bool:
    return panel.server_status.state is ServerState.HEALTHY


# -- display before network, and every server state ------------------------------------------


def test_not_configured_shows_cloud_models_only_and_how_to_configure(tmp_path):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path).load)
        await asyncio.sleep(0.05)
        return panel

    panel = run(body)
    assert panel.server_status.state is ServerState.NOT_CONFIGURED
    assert panel.menu and all(not e.is_local for e in panel.menu)
    assert "not configured" in status_line(panel)
    assert "SELFHOSTED_API_URL" in status_line(panel)
    assert [e["id"] for e in panel.model_dropdown.entries] == ids(panel)
    assert panel.model is None and panel.generate_button.disabled  # nothing usable yet


def test_panel_draws_before_the_check_answers_with_local_models_checking(tmp_path, hanging_port):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=hanging_port).load)
        # Nothing has been awaited yet: whatever shows was known without asking.
        first = (panel.server_status.state, list(panel.menu), status_line(panel))
        await until(lambda: panel.server_status.state is ServerState.OFFLINE, 4.0)
        return panel, first

    panel, (state, menu, line) = run(body)
    assert state is ServerState.CHECKING
    assert "Checking" in line
    local = [e for e in menu if e.is_local]
    assert [e.id for e in local] == ["animagine", "pony", "noobai"]
    assert all(not e.enabled and e.reason == "checking…" for e in local)
    assert menu.index(local[0]) > 0  # cloud first while checking
    assert panel.server_status.reason == "timed out"
    assert "Offline: timed out" in status_line(panel)
    assert all(e.reason == "offline" for e in panel.menu if e.is_local)


def test_every_row_of_the_form_is_shown_while_checking(tmp_path, hanging_port):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=hanging_port).load)
        panel.close()
        return panel

    panel = run(body)
    rows = [c for c in panel.children if panel.model_dropdown in getattr(c, "children", ())]
    assert rows and rows[0].layout.display != "none"  # hiding the reference row hid it once
    assert panel._reference_row.layout.display == "none"  # no model chosen: no reference
    layouts = [id(c.layout) for c in panel.children]
    assert len(set(layouts)) == len(layouts)


def test_closed_port_is_offline_at_once_with_the_reason_in_words(tmp_path, closed_port_url):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=closed_port_url).load)
        await until(lambda: panel.server_status.state is ServerState.OFFLINE, 1.5)
        return panel

    panel = run(body)
    assert "refused" in (panel.server_status.reason or "")
    assert "Offline" in status_line(panel) and "refused" in status_line(panel)
    assert dropdown_entry(panel, "animagine")["reason"] == "offline"
    assert not dropdown_entry(panel, "animagine")["enabled"]


def test_a_server_started_later_appears_by_itself_with_local_models_first(
    tmp_path, sim_factory, closed_port_url
):
    port = int(closed_port_url.rsplit(":", 1)[1])

    async def fast_sleep(_delay: float) -> None:
        await asyncio.sleep(0.05)

    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=closed_port_url).load)
        panel.watcher._sleep = fast_sleep  # the back-off, shortened
        await until(lambda: panel.server_status.state is ServerState.OFFLINE)
        sim_factory(port=port)
        await until(lambda: healthy(panel), 5.0, "the poll to find the server")
        return panel

    panel = run(body)
    assert ids(panel)[:3] == ["animagine", "pony", "noobai"]
    assert panel.model == "animagine"  # untouched: the first local model became the default
    assert panel.model_dropdown.value == "animagine"
    assert "Simulated RTX 4090" in status_line(panel)
    assert panel.menu[0].group.startswith("Local · ")


def test_refresh_finds_a_server_started_later(tmp_path, sim_factory, closed_port_url):
    port = int(closed_port_url.rsplit(":", 1)[1])

    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=closed_port_url).load)
        await until(lambda: panel.server_status.state is ServerState.OFFLINE)
        sim_factory(port=port)
        panel.status_indicator.refresh_button.click()
        await until(lambda: healthy(panel), 3.0)
        return panel

    assert run(body).menu[0].id == "animagine"


def test_healthy_status_line_shows_gpu_model_vram_idle_and_shutdown(tmp_path, sim):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        return panel

    line = status_line(run(body))
    for part in (
        "Healthy",
        "Simulated RTX 4090",
        "animagine",
        "GB VRAM",
        "idle",
        "shuts itself down in",
    ):
        assert part in line, part


def test_going_down_shows_offline_and_keeps_the_users_choice(tmp_path, sim):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        assert panel.choose("pony")
        await panel.wait_idle()
        sim.stop()
        await panel.refresh()
        return panel

    panel = run(body)
    assert panel.server_status.state is ServerState.OFFLINE
    assert panel.model == "pony"
    assert panel.model_dropdown.value == "pony"
    assert dropdown_entry(panel, "pony")["reason"] == "offline"
    assert ids(panel)[0] != "animagine"  # cloud first again


def test_busy_not_offline_while_the_panel_draws_on_the_server(tmp_path, sim_factory):
    sim = sim_factory(gen_seconds=2.0)

    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        panel.prompt.value = "a lighthouse at dusk"
        panel.generate_button.click()
        await until(lambda: any(r.path == "/generate" for r in sim.request_log))
        healths_before = sum(r.path == "/health" for r in sim.request_log)
        status = await panel.refresh()
        healths_after = sum(r.path == "/health" for r in sim.request_log)  # logged on arrival
        during = (status.state, status_line(panel), healths_after - healths_before)
        during += (panel.generate_button.description,)
        await panel.wait_idle()
        return panel, during

    panel, (state, line, healths_sent, button) = run(body)
    assert state is ServerState.BUSY
    assert "Busy" in line
    assert button == "Cancel"
    assert healths_sent == 0  # no /health sent while our image was drawn
    assert healthy(panel)
    assert panel.image_output.current is panel.last_generation is not None


def test_cloud_models_without_a_key_are_greyed_until_a_key_is_set(tmp_path):
    env = Env(tmp_path)

    async def body():
        panel = PixeryPanel(load=env.load)
        before = dropdown_entry(panel, "flux-schnell")
        env.values["FAL_KEY"] = "fal-test-key"
        await panel.refresh()
        return panel, before

    panel, before = run(body)
    assert not before["enabled"]
    assert before["reason"] == "no API key (set FAL_KEY)"
    assert dropdown_entry(panel, "flux-schnell")["enabled"]
    assert panel.model == "flux-schnell"
    assert not dropdown_entry(panel, "gemini-flash")["enabled"]


def test_a_choice_made_while_checking_survives_the_reorder(tmp_path, sim):
    sim.set_fault("/health", "slow_bytes", times=1, delay=0.003)

    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url, FAL_KEY="k").load)
        assert panel.server_status.state is ServerState.CHECKING
        panel.model_dropdown.set_state({"value": "flux-pro", "user_chose": True})  # as a click
        await until(lambda: ready(panel))
        return panel

    panel = run(body)
    assert ids(panel)[0] == "animagine"  # reordered: local first
    assert panel.model == "flux-pro"
    assert panel.model_dropdown.value == "flux-pro"
    assert panel.model_dropdown.user_chose


def test_a_greyed_entry_cannot_be_selected(tmp_path, sim_factory):
    sim = sim_factory(missing={"noobai"})

    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        return panel

    panel = run(body)
    assert dropdown_entry(panel, "noobai")["reason"] == "not downloaded"
    sent: list[Any] = []
    panel.model_dropdown.send_state = lambda key=None: sent.append(key)  # type: ignore[method-assign]
    panel.model_dropdown.set_state({"value": "noobai", "user_chose": True})  # a forged front end
    assert panel.model_dropdown.value == "animagine"
    assert panel.model == "animagine"
    assert not panel.model_dropdown.user_chose
    assert sent  # the front end is told the real value
    assert not panel.choose("gemini-flash")  # no key
    assert panel.model == "animagine"


def test_cancel_stops_the_generation_and_leaves_the_panel_usable(tmp_path, sim_factory):
    sim = sim_factory(gen_seconds=5.0)

    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        panel.prompt.value = "a slow one"
        panel.generate_button.click()
        task = panel.generate_task
        assert task is not None and panel.generate_button.description == "Cancel"
        await until(lambda: any(r.path == "/generate" for r in sim.request_log))
        await until(
            lambda: panel.elapsed.value.count("s<") == 1 and " 0.0 s" not in panel.elapsed.value
        )
        panel.generate_button.click()  # now it reads Cancel
        await asyncio.gather(task, return_exceptions=True)
        after_cancel = (task.cancelled(), panel.generate_button.description, panel.generate_task)
        sim.config.gen_seconds = 0
        panel.generate_button.click()
        await panel.wait_idle()
        return panel, after_cancel

    panel, (cancelled, button, task_after) = run(body)
    assert cancelled
    assert button == "Generate"
    assert task_after is None
    assert panel.last_generation is not None  # the next one worked
    assert panel.image_output.current is panel.last_generation


def test_an_unknown_lora_is_shown_in_words_and_the_panel_stays_usable(tmp_path, sim):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        panel.lora_picker.choice.value = "detail_tweaker"
        sim.config.loras = ["pixel_art"]  # the server changed its mind after the check
        panel.prompt.value = "a cat"
        panel.generate_button.click()
        await panel.wait_idle()
        failed = (panel.image_output.error, panel.image_output.caption.value)
        panel.lora_picker.choice.value = "none"
        panel.generate_button.click()
        await panel.wait_idle()
        return panel, failed

    panel, (error, caption) = run(body)
    assert "no LoRA named 'detail_tweaker'" in (error or "")
    assert "pixel_art" in caption and "could not be made" in caption
    assert panel.generate_button.description == "Generate"
    assert panel.image_output.error is None and panel.last_generation is not None


def test_a_model_that_is_not_downloaded_fails_in_words(tmp_path, sim):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        sim.config.missing = {"pony"}  # after the check, as when a disk was wiped
        assert panel.choose("pony")  # still listed as downloaded: the pre-warm finds out
        await panel.wait_idle()
        panel.prompt.value = "a cat"
        panel.generate_button.click()
        await panel.wait_idle()
        return panel

    panel = run(body)
    assert "Could not load pony" in panel.message.value
    assert dropdown_entry(panel, "pony")["reason"] == "not downloaded"  # re-checked
    assert panel.model == "pony"  # the user's choice stays, greyed
    assert "not downloaded" in (panel.image_output.error or "")
    assert panel.image_output.image.layout.display == "none"
    assert panel.generate_button.description == "Generate"


# -- the form follows the model ------------------------------------------------------------


def test_form_follows_the_model_and_the_servers_defaults(tmp_path, sim):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url, GEMINI_API_KEY="g").load)
        await until(lambda: ready(panel))
        local = (
            panel._negative_row.layout.display,
            panel._steps_cfg.layout.display,
            panel.lora_picker.enabled,
            panel.ip_adapter_scale.layout.display,
        )
        assert panel.choose("pony")
        pony = (panel.steps.value, panel.cfg.value)
        await panel.wait_idle()
        assert panel.choose("gemini-flash")
        return panel, local, pony

    panel, local, pony = run(body)
    assert local == (None, None, True, None)
    assert pony == (25, 7.0)  # the server's per-model defaults
    assert panel._negative_row.layout.display == "none"
    assert panel._steps_cfg.layout.display == "none"
    assert panel._reference_row.layout.display is None  # Gemini takes references
    assert panel.ip_adapter_scale.layout.display == "none"
    assert not panel.lora_picker.enabled
    assert panel.seed.disabled


def test_picking_an_unloaded_local_model_prewarms_it_and_says_so(tmp_path, sim_factory):
    sim = sim_factory(switch_seconds=0.3)

    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        panel.model_dropdown.set_state({"value": "noobai", "user_chose": True})
        during = panel.message.value
        await until(lambda: panel.server_status.state is ServerState.BUSY, 2.0)
        await panel.wait_idle()
        return panel, during

    panel, during = run(body)
    assert "Loading noobai on your server" in during
    assert "noobai is loaded" in panel.message.value
    assert {"model": "noobai"} in [r.json for r in sim.request_log if r.path == "/switch-model"]
    assert entry(panel, "noobai").loaded


def test_session_cost_and_elapsed_time_are_shown(tmp_path, sim):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        images_before = LEDGER.images
        panel.prompt.value = "a cat"
        panel.generate_button.click()
        await panel.wait_idle()
        return panel, images_before

    panel, before = run(body)
    assert f"{before + 1} image" in panel.cost.value
    assert " s<" in panel.elapsed.value


# -- the image output ----------------------------------------------------------------------


def test_images_stay_display_sized_and_earlier_ones_come_back_from_the_strip(tmp_path, sim):
    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        panel.prompt.value = "first"
        panel.size.value = (1344, 768)
        panel.generate_button.click()
        await panel.wait_idle()
        first = panel.last_generation
        panel.prompt.value = "second"
        panel.generate_button.click()
        await panel.wait_idle()
        return panel, first

    panel, first = run(body)
    out = panel.image_output
    shown = Image.open(io.BytesIO(out.image.value))
    assert shown.format == "JPEG" and max(shown.size) == DISPLAY_SIDE
    assert len(out.strip.items) == 2 and out.strip.selected == 1
    assert all(len(item["src"]) < 12_000 for item in out.strip.items)
    assert "second" in out.caption.value
    out.strip.set_state({"selected": 0})  # a click on the first thumbnail
    assert out.current is first
    assert "first" in out.caption.value and "1344×768" in out.caption.value


def tiny_generation(seed: int):
    """A 32×24 image as the self-hosted provider would hand it over."""
    from pixery_widgets.core.types import Generation

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (9, 9, 9)).save(buf, format="PNG")
    return Generation(
        png_bytes=buf.getvalue(),
        seed=seed,
        model="animagine",
        provider="selfhosted",
        params={},
        elapsed_s=0.1,
        cost_usd=0.0,
    )


def test_image_output_shows_an_error_in_place_and_then_images_again():
    out = ImageOutput()
    assert "No image yet" in out.caption.value
    out.show_error("Your server at http://x refused the request: boom")
    assert "refused the request: boom" in out.caption.value and out.error
    out.show_generation(tiny_generation(5))
    assert out.error is None
    assert "pixery-error" not in out.caption.value
    assert "refused the request" not in out.caption.value
    assert out.image.layout.display == "block"


def test_the_strip_holds_a_whole_batch_of_the_largest_count_and_drops_the_oldest_beyond():
    from pixery_widgets.session.controller import MAX_COUNT

    out = ImageOutput()
    for seed in range(MAX_COUNT + 3):
        out.show_generation(tiny_generation(seed))
    assert len(out.history) == len(out.strip.items) == MAX_COUNT
    assert [s.generation.seed for s in out.history] == list(range(3, MAX_COUNT + 3))
    assert out.strip.selected == MAX_COUNT - 1


# -- the parts on their own ------------------------------------------------------------------


def test_model_dropdown_alone_keeps_a_users_choice_and_refuses_greyed_entries():
    def e(id_: str, enabled: bool = True, group: str = "Cloud", provider: str = "fal"):
        return MenuEntry(id_, id_, provider, enabled, None if enabled else "offline", group)

    dropdown = ModelDropdown([e("a"), e("b"), e("local", False, "Local", "selfhosted")])
    assert dropdown.value == "a"
    dropdown.value = "local"
    assert dropdown.value == "a"
    dropdown.set_state({"value": "b", "user_chose": True})
    dropdown.show([e("local", True, "Local", "selfhosted"), e("a"), e("b")])
    assert dropdown.value == "b"


def test_model_dropdown_front_end_is_a_real_file_in_the_package():
    esm = str(ModelDropdown._esm)
    assert "optgroup" in esm and "save_changes" in esm
    assert "--jp-" in str(ModelDropdown._css)


def test_lora_picker_offers_none_first_and_a_scale_from_0_to_1_5():
    picker = LoraPicker(["detail", "pixel"])
    assert list(picker.choice.options) == ["none", "detail", "pixel"]
    assert picker.lora is None and picker.lora_scale == 0.8
    assert (picker.scale.min, picker.scale.max) == (0.0, 1.5)
    picker.choice.value = "pixel"
    assert picker.lora == "pixel"
    picker.show([], enabled=True)
    assert picker.lora is None and "no LoRAs" in picker.note.value
    picker.show(["detail"], enabled=False, note="LoRAs work with a model on your own server.")
    assert picker.choice.disabled and picker.lora is None


def test_status_indicator_alone_watches_by_itself(sim, monkeypatch):
    monkeypatch.setenv("SELFHOSTED_API_URL", sim.url)

    async def body():
        indicator = StatusIndicator()
        await until(lambda: indicator.state is ServerState.HEALTHY)
        indicator.watcher.close()
        return indicator

    assert 'data-state="healthy"' in run(body).text.value


def test_panel_in_a_plain_script_constructs_and_checks_on_refresh(tmp_path, sim):
    panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
    assert panel.server_status.state is ServerState.CHECKING
    assert not sim.request_log  # nothing asked yet
    asyncio.run(panel.refresh())
    assert healthy(panel) and panel.model == "animagine"
    panel.generate_button.click()  # no loop: said in words, not raised
    assert "agenerate" in (panel.image_output.error or "")
    panel.close()


# -- the Count field: a batch on consecutive seeds -------------------------------------------


def test_count_field_sits_next_to_seed_from_1_to_64_defaulting_to_1(tmp_path):
    panel = PixeryPanel(load=Env(tmp_path).load)
    row = next(c for c in panel.children if panel.seed in getattr(c, "children", ()))
    kids = list(row.children)
    assert kids.index(panel.count) == kids.index(panel.seed) + 1
    assert (panel.count.value, panel.count.min, panel.count.max) == (1, 1, 64)
    assert panel.form_values().count == 1
    assert panel._progress_box.layout.display == "none"  # no batch yet: no bar
    panel.close()


def test_count_four_with_seed_ten_shows_four_images_and_a_full_progress_bar(tmp_path, sim):
    archive = tmp_path / "archive"
    bar_values: list[int] = []

    async def body():
        env = Env(tmp_path, SELFHOSTED_API_URL=sim.url, PIXERY_ARCHIVE_DIR=str(archive))
        panel = PixeryPanel(load=env.load)
        panel.progress_bar.observe(lambda ch: bar_values.append(ch["new"]), "value")
        await until(lambda: ready(panel))
        panel.prompt.value = "a lighthouse at dusk"
        panel.seed.value = "10"
        panel.count.value = 4
        panel.generate_button.click()
        during = (panel.generate_button.description, panel._progress_box.layout.display)
        await panel.wait_idle()
        return panel, during

    panel, (button, box) = run(body)
    assert button == "Cancel" and box is None  # the bar shows while it runs
    out = panel.image_output
    assert [s.generation.seed for s in out.history] == [10, 11, 12, 13]  # in arrival order
    assert out.current is panel.last_generation and out.current.seed == 13  # the latest large
    assert len(out.strip.items) == 4 and out.strip.selected == 3  # the earlier three beside it
    saved = out.current.path.relative_to(tmp_path)  # shown relative to the working dir
    assert saved.parts[0] == archive.name
    assert "seed 13" in out.caption.value and str(saved) in out.caption.value
    assert [g.seed for g in panel.batch.generations] == [10, 11, 12, 13]
    assert all(g.path is not None and g.path.is_file() for g in panel.batch.generations)
    assert (panel.progress_bar.value, panel.progress_bar.max) == (4, 4)
    assert max(bar_values) == 4 and bar_values == sorted(bar_values)
    assert panel.progress_bar.bar_style == "success"
    assert "4 of 4 done" in panel.progress_label.value and "elapsed" in panel.progress_label.value
    assert panel.progress_note.value == ""
    assert panel.generate_button.description == "Generate"


def test_a_batch_shows_busy_and_cancel_keeps_the_finished_images(tmp_path, sim_factory):
    sim = sim_factory(gen_seconds=0.3)

    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        panel.prompt.value = "slow ones"
        panel.count.value = 6
        panel.generate_button.click()
        await until(lambda: panel.image_output.history, 5.0, "the first image")
        status = await panel.refresh()  # as the Refresh button: busy, not offline
        during = (status.state, status_line(panel), panel.generate_button.description)
        panel.generate_button.click()  # Cancel
        await panel.wait_idle()
        after = (panel.generate_button.description, panel.progress_note.value)
        sim.config.gen_seconds = 0
        panel.count.value = 1
        panel.generate_button.click()  # the panel stays usable; one image: no bar
        await panel.wait_idle()
        return panel, during, after

    panel, (state, line, button), (button_after, note) = run(body)
    assert state is ServerState.BUSY and "Busy" in line and button == "Cancel"
    assert button_after == "Generate"
    batch = panel.batch
    assert batch is None  # the single image after it is not a batch
    kept = [s.generation for s in panel.image_output.history][:-1]
    assert 1 <= len(kept) < 6
    seeds = [g.seed for g in kept]
    assert seeds == list(range(seeds[0], seeds[0] + len(kept)))  # consecutive from one base
    assert all(g.path is not None and g.path.is_file() for g in kept)
    assert f"Cancelled after {len(kept)} of 6 images." in note
    assert panel._progress_box.layout.display == "none"
    assert panel.image_output.current is panel.last_generation is not None


def test_a_failed_job_in_a_batch_is_shown_in_words_while_the_others_arrive(tmp_path, sim_factory):
    sim = sim_factory(gen_seconds=0.1)  # the others are still on their way when it fails
    sim.set_fault("/generate", "status_503", times=1)

    async def body():
        panel = PixeryPanel(load=Env(tmp_path, SELFHOSTED_API_URL=sim.url).load)
        await until(lambda: ready(panel))
        panel.prompt.value = "a lighthouse"
        panel.seed.value = "10"
        panel.count.value = 4
        panel.generate_button.click()
        await until(lambda: panel.progress_note.value, 5.0, "the failure in words")
        early = (panel.progress_note.value, len(panel.image_output.history))
        await panel.wait_idle()
        return panel, early

    panel, (early_note, shown_then) = run(body)
    assert "1 of 4 failed: Your server at" in early_note and shown_then < 3
    assert "refused the request" in panel.progress_note.value
    assert 'class="pixery-error-text"' in panel.progress_note.value  # the palette's error colour
    out = panel.image_output
    assert [s.generation.seed for s in out.history] == [11, 12, 13]
    assert out.error is None and out.current.seed == 13  # the images stay; no error box
    assert "3 of 4 done · 1 failed" in panel.progress_label.value
    assert panel.progress_bar.value == 4 and panel.progress_bar.bar_style == "warning"
    assert panel.generate_button.description == "Generate"
