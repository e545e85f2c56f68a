"""``PixeryPanel``: the status, the model menu, the form, and the images, in one widget.

It shows at once, with what is known without asking (no network on the
caller's path), and checks the self-hosted server in the background on the
kernel's event loop. Its buttons start background tasks, so Cancel works
while no cell runs. A Count above one makes that many images (consecutive
seeds) as a batch, with a progress bar, each image shown as it arrives; the
open X/Y section makes a sweep, and its contact sheet shows under the section. The
rules live in ``PanelController`` and ``PoolWatcher``; this module only
draws them and forwards clicks.

Outside a running event loop (a plain script) the panel still constructs; the
server check then runs on the first ``await panel.refresh()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..archive import ArchiveRecord
from ..core.config import Settings, load_settings
from ..core.tasks import spawn
from ..core.types import Generation, SelfHostedStatus
from ..session.batch import Batch
from ..session.controller import FormValues, PanelController
from ..session.ledger import LEDGER, CostLedger
from ..session.menu import MenuEntry
from ..session.pool_watcher import PoolWatcher
from ..session.sheet import ContactSheet
from . import panel_parts as parts
from .form import RequestForm
from .image_output import ImageOutput
from .model_dropdown import ModelDropdown
from .progress import show_on_bar
from .remix import remix_into, remix_parent, set_reference
from .status import StatusIndicator
from .styles import error_text, muted
from .sweep_section import SweepSection

__all__ = ["PixeryPanel"]

#: Seconds between updates of the elapsed time while generating.
TICK_SECONDS = 0.2


class PixeryPanel(w.VBox):
    """Make images from a notebook, with your own server or the cloud.

    ``settings`` is the configuration to start from (default: read now);
    ``load`` is what Refresh uses to re-read it (default: ``load_settings``).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        load: Callable[[], Settings] | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        load = load or load_settings
        self.watcher = PoolWatcher(settings if settings is not None else load(), load=load)
        self.controller = PanelController(self.watcher, clock=clock)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._syncing = False
        self._ticker: asyncio.Task[None] | None = None
        self._drainer: asyncio.Task[None] | None = None
        #: How many of the controller's ``batch_images`` the output shows already.
        self._batch_shown = 0
        self._make_parts()
        super().__init__(self._layout_rows(), **kwargs)
        self.add_class("pixery")
        self.add_class("pixery-panel")
        self.layout.max_width = "940px"
        self.layout.padding = "8px 12px"
        self._wire()
        self._render_form()
        self.watcher.start()

    def _make_parts(self) -> None:
        """Every control, as an attribute (scripts and tests reach them by name)."""
        self.status_indicator = StatusIndicator(self.watcher)
        self.model_dropdown = ModelDropdown()
        #: The request fields' controls, from the schema; each also an attribute (``panel.cfg``).
        self.form = RequestForm()
        for attr, control in self.form.widgets.items():
            setattr(self, attr, control)
        self.count = parts.count_field()
        self.clear_reference = parts.remove_reference_button()
        self.generate_button = w.Button(
            description="Generate", button_style="primary", layout=w.Layout(width="120px")
        )
        self.elapsed = w.HTML(muted(""))
        self.cost = w.HTML(muted(LEDGER.summary()))
        self.message = w.HTML("")
        self.progress_bar = parts.progress_bar()
        self.progress_label = w.HTML("")
        #: A batch's failures (or what a cancel left), in words.
        self.progress_note = w.HTML("")
        self.image_output = ImageOutput()
        #: The X/Y section (closed: off); the sweep's contact sheet shows under it.
        self.sweep_section = SweepSection()
        self.image_output.record_bar.panel = self  # its details' Remix loads here

    def _layout_rows(self) -> list[w.Widget]:
        """The panel top to bottom; rows that come and go with the model are kept."""
        self._negative_row = w.Box([self.negative_prompt], layout=w.Layout(width="100%"))
        self._steps_cfg = w.HBox([self.steps, self.cfg])
        self._reference_row = parts.row(self.reference, self.clear_reference, self.ip_adapter_scale)
        self._progress_box = w.VBox(
            [parts.row(self.progress_bar, self.progress_label), self.progress_note],
            layout=w.Layout(width="100%", display="none"),
        )
        self._progress_box.add_class("pixery-progress")
        #: Rows shown while any of their controls is (``RequestForm.fit`` decides those).
        self._fitted_rows = (
            (self._negative_row, ("negative_prompt",)),
            (self._steps_cfg, ("steps", "cfg")),
            (self._reference_row, ("reference",)),
        )
        return [
            self.status_indicator,
            parts.row(self.model_dropdown, self.lora_picker),
            self.prompt,
            self._negative_row,
            parts.row(self.size, self.seed, self.count, self._steps_cfg),
            *([parts.row(*newer)] if (newer := self.form.newer()) else []),
            self._reference_row,
            self.sweep_section,
            parts.row(self.generate_button, self.elapsed, self.cost),
            self._progress_box,
            self.message,
            self.image_output,
        ]

    def _wire(self) -> None:
        """Clicks and picks go to the controller; its changes and the ledger's come back."""
        self.model_dropdown.observe(self._on_model_picked, "value")
        self.generate_button.on_click(self._on_generate_click)
        self.reference.observe(self._on_reference, "value")
        self.clear_reference.on_click(self._on_clear_reference)
        self._unsubscribe_controller = self.controller.subscribe(self._on_controller)
        self._unsubscribe_ledger = LEDGER.subscribe(self._on_ledger)

    # -- what scripts and tests read ------------------------------------------------------

    @property
    def server_status(self) -> SelfHostedStatus:
        """The self-hosted server's status as the panel shows it now."""
        return self.watcher.status

    @property
    def menu(self) -> list[MenuEntry]:
        """The model menu as the panel shows it now, in order."""
        return list(self.controller.menu)

    @property
    def model(self) -> str | None:
        """The chosen model's id."""
        return self.controller.selection

    @property
    def generate_task(self) -> asyncio.Task[Generation | None] | None:
        """The running generation, or ``None``."""
        return self.controller.generate_task

    @property
    def last_generation(self) -> Generation | None:
        return self.controller.last_generation

    @property
    def batch(self) -> Batch | None:
        """The batch the Count field started (running or last), or ``None``."""
        return self.controller.batch

    @property
    def sheet(self) -> ContactSheet | None:
        """The contact sheet of the last X/Y sweep, or ``None``."""
        return self.controller.sheet

    async def refresh(self) -> SelfHostedStatus:
        """Re-read the settings (SELFHOSTED_API_URL, keys, ``.env``) and check the server now."""
        return await self.watcher.refresh()

    async def wait_idle(self) -> None:
        """Wait until the generation or batch, checks it caused, and drawing images are over."""
        while True:
            await self.controller.wait_idle()
            pending = [t for t in self._tasks if not t.done()]
            if not pending and not self.controller.running:
                return
            await asyncio.gather(*pending, return_exceptions=True)

    def choose(self, model_id: str) -> bool:
        """Pick a model as the user would; False (and no change) for a greyed entry."""
        self.model_dropdown.value = model_id
        return self.controller.selection == model_id

    def form_values(self) -> FormValues:
        """What the form holds now."""
        return FormValues(
            **self.form.values(), count=self.count.value, sweep=self.sweep_section.rows()
        )

    def remix(self, record: ArchiveRecord) -> list[str]:
        """Load an archived record's settings into the form, ready to change and generate;
        returns what could not be loaded, in words (``widgets/remix.py``)."""
        return remix_into(self, record)

    def use_reference(self, image: bytes, *, name: str = "reference.png") -> None:
        """Make ``image`` the reference image of the next generation."""
        set_reference(self, image, name=name)

    # -- from the controller to the widgets -----------------------------------------------

    def _on_controller(self, controller: PanelController, what: str) -> None:
        if what in ("status", "selection"):
            self._render_form()
        elif what == "generation":
            self._render_generation()
        elif what == "progress":
            self._render_progress()
            self._show_batch_images()
        elif what == "message":
            self._render_message()

    def _render_form(self) -> None:
        ctrl = self.controller
        view = ctrl.view()
        self._syncing = True
        try:
            with self.model_dropdown.hold_sync():
                self.model_dropdown.set_entries(
                    [dataclasses.asdict(e) for e in ctrl.menu], ctrl.selection
                )
                self.model_dropdown.user_chose = ctrl.user_chose
        finally:
            self._syncing = False
        self.lora_picker.show(view.loras, enabled=view.lora_enabled, note=view.lora_note)
        self.generate_button.disabled = view.model is None and not ctrl.running
        self.form.fit(ctrl.spec())
        for row, attrs in self._fitted_rows:
            shown = any(self.form.shown(attr) for attr in attrs)
            row.layout.display = None if shown else "none"
        fill = ctrl.steps_cfg_to_show(self.steps.value, self.cfg.value)
        if fill is not None:
            steps, cfg = fill
            if steps is not None:
                self.steps.value = steps
            if cfg is not None:
                self.cfg.value = cfg
        self._render_message()

    def _render_generation(self) -> None:
        ctrl = self.controller
        snap = ctrl.progress()
        self._render_progress()
        self.sweep_section.show_sheet(ctrl.sheet)
        if ctrl.running:
            self.generate_button.description = "Cancel"
            self.generate_button.button_style = "warning"
            if snap is not None:
                self._batch_shown = 0  # a new batch: its images come from the start
                note = f"Generating {snap.total} images with {ctrl.view().label}…"
            else:
                note = f"Generating with {ctrl.view().label}…"
            self.image_output.show_note(note)
            if self._ticker is None or self._ticker.done():
                self._ticker = spawn(self._tick(), self._tasks, self._show_failure)
            return
        self.generate_button.description = "Generate"
        self.generate_button.button_style = "primary"
        self._show_elapsed()
        if snap is not None:  # a batch: its images showed as they arrived
            self._show_batch_images()
            if not ctrl.batch_images:
                if ctrl.last_outcome == "cancelled":
                    self.image_output.show_note("Cancelled.")
                else:
                    self.image_output.show_error(
                        ctrl.last_error or "No image arrived.", title="No image could be made"
                    )
        elif ctrl.last_outcome == "done" and ctrl.last_generation is not None:
            drawing = self.image_output.ashow_generation(ctrl.last_generation)
            if spawn(drawing, self._tasks, self._show_failure) is None:  # no loop: draw here
                self.image_output.show_generation(ctrl.last_generation)
        elif ctrl.last_outcome == "failed":
            self.image_output.show_error(ctrl.last_error or "Unknown error.")
        elif ctrl.last_outcome == "cancelled":
            self.image_output.show_note("Cancelled.")
        self._render_message()

    def _render_progress(self) -> None:
        """The batch's bar, its line and its failures; hidden after a single image."""
        ctrl = self.controller
        snap = ctrl.progress()
        if snap is None:
            self._progress_box.layout.display = "none"
            return
        self._progress_box.layout.display = None
        show_on_bar(self.progress_bar, snap)
        label = muted(ctrl.progress_text())
        if self.progress_label.value != label:
            self.progress_label.value = label
        note = ctrl.batch_note
        if not note:
            self.progress_note.value = ""
        elif ctrl.batch_failures():
            self.progress_note.value = error_text(note)
        else:  # only a cancel: not an error
            self.progress_note.value = muted(note)

    def _show_batch_images(self) -> None:
        """Show the batch's new images in arrival order, one after the other."""
        if self._batch_shown >= len(self.controller.batch_images):
            return
        if self._drainer is not None and not self._drainer.done():
            return  # it picks the new ones up
        self._drainer = spawn(self._drain_batch_images(), self._tasks, self._show_failure)
        if self._drainer is None:  # no event loop (a plain script): draw here
            images = self.controller.batch_images
            for generation in images[self._batch_shown :]:
                self.image_output.show_generation(generation)
            self._batch_shown = len(images)

    async def _drain_batch_images(self) -> None:
        while self._batch_shown < len(self.controller.batch_images):
            generation = self.controller.batch_images[self._batch_shown]
            self._batch_shown += 1
            await self.image_output.ashow_generation(generation)

    def _render_message(self) -> None:
        text = self.controller.message
        self.message.value = muted(text) if text else ""

    def _show_elapsed(self) -> None:
        seconds = self.controller.elapsed()
        text = f"{seconds:.1f} s" if seconds or self.controller.running else ""
        value = muted(text)
        if self.elapsed.value != value:
            self.elapsed.value = value

    async def _tick(self) -> None:
        while self.controller.running:
            self._show_elapsed()
            self._render_progress()  # a batch's elapsed and time left move on between images
            await asyncio.sleep(TICK_SECONDS)
        self._show_elapsed()

    def _show_failure(self, text: str) -> None:
        self.image_output.show_error(f"Something went wrong in the panel: {text}")

    def _on_ledger(self, ledger: CostLedger) -> None:
        self.cost.value = muted(ledger.summary())

    # -- from the widgets to the controller -----------------------------------------------

    def _on_model_picked(self, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] is None:
            return
        if not self.controller.choose(change["new"]):
            self._render_form()  # refused: show the controller's choice again

    def _on_generate_click(self, _button: w.Button) -> None:
        if self.controller.running:
            self.controller.cancel()
            return
        with remix_parent(self):  # after a remix: the new images are its children
            self.controller.start_generation(self.form_values())

    def _on_reference(self, change: dict[str, Any]) -> None:
        self.clear_reference.layout.display = None if change["new"] else "none"

    def _on_clear_reference(self, _button: w.Button) -> None:
        self.reference.value = ()

    def close(self) -> None:
        """Stop checking the server, cancel what runs, and close every part."""
        self._unsubscribe_ledger()
        self._unsubscribe_controller()
        self.controller.close()
        for task in list(self._tasks):
            task.cancel()
        for child in self.children:
            _close_tree(child)
        super().close()


def _close_tree(widget: w.Widget) -> None:
    """Close a widget and everything inside it (``Widget.close`` does not recurse)."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
