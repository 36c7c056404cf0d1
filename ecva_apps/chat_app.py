"""Gradio chat app: pick a clip, watch it, ask a video LLM the benchmark's What / Why / How questions,
and score the answer against the expert annotation.

Everything it computes comes from ``ecva_core`` (``ecva_core.models.session`` and ``ecva_core.dataset.browse``);
this file only lays out components and wires events. Start it with ``ecva serve chat``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import gradio as gr

from ecva_core.dataset import Dataset, browse, load_dataset
from ecva_core.errors import EcvaError
from ecva_core.models import session
from ecva_core.schema import Task
from ecva_core.video.uploads import VIDEO_UPLOAD_SUFFIXES, max_video_upload_mb

log = logging.getLogger("ecva.chat_app")

BLIND_NOTE = "*Annotation hidden for blind testing.*"
PRIVATE: dict[str, Any] = {"api_visibility": "private"}  # UI-only events, not offered to API clients


def _error_text(exc: Exception) -> str:
    """A user-facing message: ours verbatim, anything else without internals (logged in full)."""
    if isinstance(exc, EcvaError):
        return str(exc)
    log.exception("unexpected error in the chat app")
    return f"Something went wrong ({type(exc).__name__}); the details are in the server log."


def _annotation_markdown(view: browse.AnnotationView) -> str:
    esc = html.escape
    lines = [
        f"**Clip {esc(view.video_id)}** · {esc(view.category)}",
        f"**Moments:** {esc(', '.join(view.moments) or 'none annotated')}",
        f"**What:** {esc(view.what or '—')}",
        f"**Why:** {esc(view.why or '—')}",
        f"**How:** {esc(view.how or '—')}",
        "**Key phrases:** " + (", ".join(f"`{esc(p)}`" for p in view.key_phrases if p) or "—"),
    ]
    if view.flags:
        lines.append("**Quality flags:** " + esc("; ".join(view.flags)))
    return "\n\n".join(lines)


def _score_markdown(score: session.AnswerScore) -> str:
    metric_cells = " · ".join(
        f"{name} **{value:.3f}**" if value is not None else f"{name} n/a" for name, value in score.metrics.items()
    )
    lines = [f"**{score.task.facet} answer vs the expert answer** — {metric_cells}"]
    for metric, verdict in score.judge.items():
        value = verdict["value"]
        shown = f"{value:.2f}" if value is not None else verdict["status"]
        lines.append(f"- {metric}: **{shown}** — {html.escape(str(verdict['reason']))}")
    lines.append(f"*Judge: {html.escape(score.judge_status)}*")
    return "\n".join(lines)


class ChatApp:
    """The app's state shared by all browser sessions: the dataset and the model slot."""

    def __init__(self, dataset: Dataset, model_spec: str | None,
                 model_options: Mapping[str, Any] | None = None) -> None:
        self.dataset = dataset
        self.models = session.ModelSlot(model_spec, model_options)

    def model_status(self) -> str:
        if self.models.loaded:
            status = f"Model: `{html.escape(self.models.spec or '')}` (loaded)"
            problem = self.models.fast_decode_problem
            if problem:
                status += f" · fast decoding is off ({html.escape(problem)}); answers use transformers generate"
            return status
        if self.models.error:
            return f"⚠️ {html.escape(self.models.error)}"
        return f"Model: `{html.escape(self.models.spec or '')}` (loads on first question)"

    def clip_choices(self, query: str, category: str | None) -> Any:
        entries = browse.find_clips(self.dataset, query or "", category or None)
        return gr.update(choices=[(e.label, e.video_id) for e in entries], value=None)

    def pick(self, video_id: str | None, hidden: bool) -> tuple[Any, str, dict[str, Any], Any, str]:
        """Select a dataset clip: preview for the player, annotation panel, and enable sending."""
        if not video_id:
            return None, "", {}, gr.update(interactive=False), "Pick a clip to start."
        try:
            from ecva_core.video import browser_preview

            view = browse.annotation_view(self.dataset, video_id)
            path = browse.resolve_video(self.dataset, video_id)
            preview = browser_preview(path)
        except Exception as exc:
            return None, "", {}, gr.update(interactive=False), f"⚠️ {html.escape(_error_text(exc))}"
        clip = {"video_id": video_id, "path": str(path), "annotation": _annotation_markdown(view)}
        panel = BLIND_NOTE if hidden else clip["annotation"]
        return str(preview), panel, clip, gr.update(interactive=True), f"Clip {video_id} ready."

    def upload(self, file_path: str | None) -> tuple[Any, str, dict[str, Any], Any, str]:
        """Use an uploaded clip (no annotation, so no scoring)."""
        if not file_path:
            return None, "", {}, gr.update(interactive=False), "Upload a clip or pick one."
        try:
            from ecva_core.video import browser_preview, check_video_upload

            preview = browser_preview(check_video_upload(file_path))
        except Exception as exc:
            return None, "", {}, gr.update(interactive=False), f"⚠️ {html.escape(_error_text(exc))}"
        clip = {"video_id": None, "path": file_path, "annotation": "*Uploaded clip: no expert annotation.*"}
        return str(preview), clip["annotation"], clip, gr.update(interactive=True), "Uploaded clip ready."

    @staticmethod
    def toggle_annotation(hidden: bool, clip: dict[str, Any]) -> str:
        if not clip:
            return ""
        return BLIND_NOTE if hidden else clip["annotation"]

    def respond(
        self, history: list[dict[str, Any]], clip: dict[str, Any], model_spec: str
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """Stream the model's answer to the last user message into the chat."""
        if not clip:
            yield [*history, {"role": "assistant", "content": "Pick a clip first."}], self.model_status()
            return
        history = [*history, {"role": "assistant", "content": ""}]
        try:
            if not self.models.loaded or (model_spec or "").strip() != (self.models.spec or ""):
                compiling = " and compiling its decode step" if self.models.options.get("static_cache") else ""
                yield history, f"Loading the model{compiling} (the first load can take minutes) …"
            model = self.models.get(model_spec or None)
            yield history, self.model_status()
            conversation = [{"role": m["role"], "content": _text(m["content"])} for m in history[:-1]]
            text = ""
            for chunk in model.chat(clip["path"], conversation):
                text += chunk
                history[-1] = {"role": "assistant", "content": text}
                yield history, self.model_status()
        except Exception as exc:
            history[-1] = {"role": "assistant", "content": f"⚠️ {_error_text(exc)}"}
            yield history, self.model_status()

    def score(self, history: list[dict[str, Any]], clip: dict[str, Any], task_name: str) -> Iterator[str]:
        """Score the latest answer against the expert answer for the task last asked: the text metrics
        at once, then the judge's verdicts when a judge is configured."""
        from ecva_core.config import get_settings

        try:
            if not clip or not clip.get("video_id"):
                raise EcvaError("scoring needs a dataset clip with an expert annotation (not an upload)")
            answers = [m for m in history if m["role"] == "assistant" and _text(m["content"]).strip()]
            if not answers:
                raise EcvaError("there is no answer to score yet; ask a question first")
            task = Task.parse(task_name) if task_name else Task.DESCRIPTION
            answer = _text(answers[-1]["content"])
            settings = get_settings()
            result = session.text_scores(answer, self.dataset, clip["video_id"], task, settings)
            if settings.judge_wanted():
                result.judge_status = f"asking the judge ({settings.judge_model}) …"
                yield _score_markdown(result)
                session.judge_answer(result, answer, self.dataset, settings)
            yield _score_markdown(result)
        except Exception as exc:
            yield f"⚠️ {html.escape(_error_text(exc))}"


def _text(content: Any) -> str:
    """Chat message content as plain text (Gradio may hand back a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    return str(content or "")


def build_app(dataset: Dataset, model_spec: str | None = None,
              model_options: Mapping[str, Any] | None = None) -> gr.Blocks:
    """Lay out the chat app on ``dataset`` with ``model_spec`` preselected (loaded with ``model_options``)."""
    app = ChatApp(dataset, model_spec, model_options)
    initial = browse.find_clips(dataset)
    with gr.Blocks(title="ECVA chat") as demo:
        clip_state = gr.State({})
        task_state = gr.State(Task.DESCRIPTION.value)
        gr.Markdown(f"## ECVA chat · {html.escape(dataset.name)}")
        with gr.Row():
            with gr.Column(scale=5):
                with gr.Row():
                    search = gr.Textbox(label="Search clips", placeholder="id, category or annotation text")
                    category = gr.Dropdown(
                        label="Category",
                        choices=[("All", "")] + [(c, c) for c in browse.clip_categories(dataset)],
                        value="",
                    )
                clip_picker = gr.Dropdown(label="Clip", choices=[(e.label, e.video_id) for e in initial], value=None)
                upload = gr.File(
                    label=f"…or upload a clip (up to {max_video_upload_mb():g} MB)",
                    file_types=list(VIDEO_UPLOAD_SUFFIXES),
                    type="filepath",
                )
                player = gr.Video(label="Clip", interactive=False)
                hide = gr.Checkbox(label="Hide annotation (blind test)", value=False)
                annotation = gr.Markdown()
            with gr.Column(scale=6):
                model_box = gr.Textbox(
                    label="Model", value=model_spec or "", placeholder="openai:MODEL@URL · hf:ID · anomshield:PATH"
                )
                status = gr.Markdown(app.model_status())
                chat = gr.Chatbot(label="Conversation", height=420)
                with gr.Row():
                    question = gr.Textbox(label="Question", scale=5, placeholder="Ask about the clip")
                    send = gr.Button("Send", variant="primary", interactive=False, scale=1)
                with gr.Row():
                    ask_buttons = {facet: gr.Button(f"{facet}?", size="sm") for facet in ("What", "Why", "How")}
                    regenerate = gr.Button("Regenerate", size="sm")
                    stop = gr.Button("Stop", size="sm", variant="stop")
                    clear = gr.Button("Clear", size="sm")
                    score_btn = gr.Button("Score it", size="sm", variant="secondary")
                score_panel = gr.Markdown()

        def add_question(text: str, history: list[dict[str, Any]], clip: dict[str, Any]) -> tuple:
            if not clip:
                raise gr.Error("Pick a clip first.")
            if not (text or "").strip():
                raise gr.Error("Type a question first.")
            return [*history, {"role": "user", "content": text}], ""

        def add_preset(facet: str) -> Any:
            def handler(history: list[dict[str, Any]], clip: dict[str, Any]) -> tuple:
                if not clip:
                    raise gr.Error("Pick a clip first.")
                task = browse.task_for_facet(facet)
                question_text = browse.benchmark_question(task)
                return [*history, {"role": "user", "content": question_text}], task.value

            return handler

        def drop_last_answer(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
            while history and history[-1]["role"] == "assistant":
                history = history[:-1]
            if not history:
                raise gr.Error("Nothing to regenerate yet.")
            return history

        search.change(app.clip_choices, [search, category], clip_picker, api_name="search_clips")
        category.change(app.clip_choices, [search, category], clip_picker, **PRIVATE)
        pick_outputs = [player, annotation, clip_state, send, status]
        clip_picker.change(app.pick, [clip_picker, hide], pick_outputs, api_name="pick")
        upload.change(app.upload, [upload], pick_outputs, api_name="upload")
        hide.change(app.toggle_annotation, [hide, clip_state], annotation, **PRIVATE)

        answer_io = {"fn": app.respond, "inputs": [chat, clip_state, model_box], "outputs": [chat, status]}
        typed = send.click(add_question, [question, chat, clip_state], [chat, question], api_name="add_question")
        streams = [typed.then(**answer_io, api_name="respond")]
        submitted = question.submit(add_question, [question, chat, clip_state], [chat, question], **PRIVATE)
        streams.append(submitted.then(**answer_io, **PRIVATE))
        for facet, button in ask_buttons.items():
            preset_io = {"fn": add_preset(facet), "inputs": [chat, clip_state], "outputs": [chat, task_state]}
            asked = button.click(**preset_io, api_name=f"ask_{facet.lower()}")
            streams.append(asked.then(**answer_io, **PRIVATE))
        redo = regenerate.click(drop_last_answer, [chat], [chat], **PRIVATE)
        streams.append(redo.then(**answer_io, **PRIVATE))
        stop.click(None, None, None, cancels=streams, **PRIVATE)
        clear.click(lambda: ([], ""), None, [chat, score_panel], **PRIVATE)
        score_btn.click(app.score, [chat, clip_state, task_state], score_panel, api_name="score")
    return demo


def server_options() -> dict[str, Any]:
    """Gradio server settings the app always runs with: uploads over the clip size limit are refused
    by the server while they stream in (413), before the app sees them."""
    return {"max_file_size": f"{max_video_upload_mb():g}mb"}


def launch(
    model_spec: str | None = None, port: int | None = None, data: Path | None = None, host: str = "127.0.0.1",
    model_options: Mapping[str, Any] | None = None,
) -> None:
    """Load the dataset (the demo by default) and serve the app until interrupted."""
    from ecva_core.config import get_settings

    model_spec = model_spec or get_settings().chat_model
    dataset = load_dataset(data)
    app = build_app(dataset, model_spec, model_options)
    app.queue(default_concurrency_limit=4).launch(
        server_name=host,
        server_port=port,
        show_error=False,
        inbrowser=False,
        **server_options(),
    )
