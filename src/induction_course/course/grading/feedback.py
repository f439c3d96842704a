"""The feedback pages students get: nothing of the hidden tests, light, no empty boxes.

``nbgrader generate_feedback`` renders each autograded notebook with the preprocessors of
``graders/nbgrader_config.py`` (GetGrades, ClearHiddenTests, ...). Three gaps remain, closed
here by steps added to that list in the class's course folder (:func:`enable_clean_feedback`,
so a later ``generate_feedback`` there, after manual grading, gets them too):

- **hidden tests in tracebacks**: ClearHiddenTests removes the ``### BEGIN HIDDEN TESTS`` block
  from a cell's *source*, but a hidden test that fails leaves an error *output* whose traceback
  quotes the failing line and its neighbours (seeds, sizes, calls). :class:`ScrubHiddenOutputs`
  (before ClearHiddenTests, while the block is still there to read) replaces every such line of
  the outputs by :data:`HIDDEN_NOTE`; the error's message (the check's explanation) stays;
- **weight**: a circuitsvis view inlines ~1.4 MB of JavaScript, and the notebook's widget state
  is saved with it. :class:`LightenOutputs` drops scripts, widgets and HTML over
  :data:`MAX_HTML` bytes from the copy being rendered (a note says what was there and how to see
  it); images and text stay, very long printed text is cut. It also puts :data:`FEEDBACK_CSS`
  (2 kB) where the template inlines all of Bootstrap 3 (117 kB, for a few panels): chapter 3's
  page goes from 3.2 MB to about 0.2 MB, most of it its two plots;
- **empty comment boxes**: nbgrader gives every unanswered solution cell the comment
  "No response.", which its template shows as a box. :class:`DropEmptyComments` (after
  GetGrades) removes that comment; a grader's own comment stays.

Only the rendering copy changes: the autograded notebooks and the gradebook are left as they are.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
HIDDEN_NOTE = "    (a line of the hidden tests, not shown)"
NO_RESPONSE = "No response."  # nbgrader's automatic comment on an unchanged solution cell
MAX_HTML = 100_000  # characters of HTML one output may keep
MAX_STREAM = 20_000  # characters of printed text one output may keep
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# what precedes the code in a traceback line: IPython's "---> 12 " and "     13 ", Python's indent
_SOURCE_PREFIX = re.compile(r"^\s*(?:-*>\s*)?(?:\d+\s)?")
_CARETS = re.compile(r"^\s*[\^~]+\s*$")  # Python 3.11's markers under the failing expression
CONFIG_MARKER = "# induction-course: clean feedback pages"
BOOTSTRAP = "bootstrap.min.css"  # what nbgrader's feedback template inlines
# The few rules the feedback template's markup (panels, the score on the right) and nbconvert's
# cells need, in place of Bootstrap; ANSI colours for the tracebacks.
FEEDBACK_CSS = """\
*{box-sizing:border-box}body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;background:#fff}
.container{max-width:1140px;margin:0 auto;padding:0 12px}
a{color:#2a6496}h1,h2,h3,h4,h5{line-height:1.2;margin:.9em 0 .4em}h4{font-size:1.15em}
code,pre{font:13px/1.35 Menlo,Consolas,"DejaVu Sans Mono",monospace}
pre{margin:0;padding:3px 4px;white-space:pre-wrap;word-wrap:break-word}
img{max-width:100%}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 6px}
.panel{margin:0 0 1em;border:1px solid #ddd;border-radius:4px;background:#fff}
.panel-heading{padding:.45em .7em;border-bottom:1px solid #ddd;border-radius:3px 3px 0 0;background:#f5f5f5}
.panel-primary{border-color:#337ab7}.panel-primary>.panel-heading{background:#337ab7;color:#fff}
.panel-primary>.panel-heading a{color:#e0e8f0}.panel-body{padding:.6em .7em}
.panel-footer{padding:.45em .7em;border-top:1px solid #ddd;background:#f5f5f5}
.pull-right{float:right}.cell{margin:.4em 0}.output_stderr,.output_error{background:#fdf0f0}
.feedback-note{color:#555;padding:.3em 0}
.ansi-red-fg{color:#c33}.ansi-green-fg{color:#080}.ansi-yellow-fg{color:#a70}.ansi-blue-fg{color:#15c}
.ansi-cyan-fg{color:#088}.ansi-magenta-fg{color:#a3a}.ansi-bold{font-weight:bold}
"""


def hidden_lines(nb: Any) -> set[str]:
    """The stripped lines of every hidden-test block (with its markers) of a notebook."""
    found: set[str] = set()
    for cell in nb.cells:
        inside = False
        for line in str(cell.get("source", "")).splitlines():
            if BEGIN in line or END in line:
                inside = BEGIN in line
                found.add(line.strip())
            elif inside and re.search(r"\w", line):  # a lone ")" says nothing
                found.add(line.strip())
    return found


def scrub_text(text: str, hidden: set[str]) -> tuple[str, bool]:
    """``text`` with each run of lines that quote hidden-test source replaced by one note."""
    out: list[str] = []
    removed = previous = False
    for line in text.split("\n"):
        plain = _ANSI.sub("", line)
        code = _SOURCE_PREFIX.sub("", plain, count=1).strip()
        if code and (code in hidden or BEGIN in plain or END in plain):
            if not previous:
                out.append(HIDDEN_NOTE)
            removed = previous = True
            continue
        if previous and _CARETS.match(plain):
            continue
        previous = False
        out.append(line)
    return "\n".join(out), removed


def scrub_outputs(nb: Any, hidden: set[str] | None = None) -> int:
    """Scrub the tracebacks and printed text of every output; the number of outputs changed."""
    hidden = hidden_lines(nb) if hidden is None else hidden
    changed = 0
    if not hidden:
        return 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                parts = [scrub_text(t, hidden) for t in output.get("traceback", [])]
                output["traceback"] = [t for t, _ in parts]
                changed += any(r for _, r in parts)
            elif output.get("output_type") == "stream":
                output["text"], removed = scrub_text(_joined(output.get("text", "")), hidden)
                changed += removed
    return changed


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def note_html(what: str) -> str:
    return (f'<div class="feedback-note"><em>{html.escape(what)}: not included in this page, to keep it '
            "small and readable offline. Open your notebook in Jupyter to see it.</em></div>")


def lighten_output(output: Any) -> bool:
    """Drop what makes ``output`` heavy (scripts, widgets, huge HTML; long text is cut); True if changed."""
    if output.get("output_type") == "stream":
        text = _joined(output.get("text", ""))
        if len(text) > MAX_STREAM:
            output["text"] = text[:MAX_STREAM] + f"\n[... {len(text) - MAX_STREAM} more characters not shown]\n"
            return True
        return False
    data = output.get("data")
    if not data:
        return False
    page = _joined(data.get("text/html", ""))
    if not (WIDGET_VIEW in data or "application/javascript" in data or len(page) > MAX_HTML
            or "<script" in page.lower()):
        return False
    for key in (WIDGET_VIEW, "application/javascript", "text/html"):
        data.pop(key, None)
    if not any(k.startswith("image/") for k in data):  # a static image of the figure, when there is one, stays
        label = _joined(data.get("text/plain", "")).strip() or "an interactive figure"
        data["text/html"] = note_html(f"Interactive output {label}" if len(label) < 200 else "An interactive output")
    return True


def lighten_outputs(nb: Any) -> int:
    """:func:`lighten_output` on every output, and the saved widget state dropped; the number changed."""
    changed = sum(lighten_output(o) for cell in nb.cells for o in cell.get("outputs", []))
    if nb.metadata.pop("widgets", None) is not None:
        changed += 1
    return changed


def drop_empty_comment(cell: Any) -> None:
    """No "Comments" box for a cell whose only comment is nbgrader's "No response." (or blank)."""
    meta = cell.get("metadata", {}).get("nbgrader")
    if isinstance(meta, dict) and str(meta.get("comment") or "").strip() in ("", NO_RESPONSE):
        meta.pop("comment", None)


class FeedbackStep(Preprocessor):
    """On unless configured off, like nbgrader's steps (nbconvert's are off by default, and
    nbgrader registers its steps without enabling them)."""

    enabled = Bool(True).tag(config=True)


class ScrubHiddenOutputs(FeedbackStep):
    """Before ClearHiddenTests: hidden-test source lines out of tracebacks and printed text."""

    def preprocess(self, nb, resources):
        scrub_outputs(nb)
        return nb, resources


def compact_css(include_css: Any) -> Any:
    """The template's ``resources.include_css``, with :data:`FEEDBACK_CSS` in place of Bootstrap."""
    from markupsafe import Markup

    def include(name: str) -> Any:
        if name == BOOTSTRAP:
            return Markup(f'<style type="text/css">\n{FEEDBACK_CSS}</style>')
        return include_css(name)

    return include


class LightenOutputs(FeedbackStep):
    """No inlined JavaScript, widgets or huge HTML in a feedback page (a note instead); a small stylesheet."""

    def preprocess(self, nb, resources):
        lighten_outputs(nb)
        if callable(resources.get("include_css")):  # set by HTMLExporter before the preprocessors run
            resources["include_css"] = compact_css(resources["include_css"])
        return nb, resources


class DropEmptyComments(FeedbackStep):
    """After GetGrades: no "Comments: No response." boxes."""

    def preprocess_cell(self, cell, resources, index):
        drop_empty_comment(cell)
        return cell, resources


def feedback_preprocessors(current: list) -> list:
    """nbgrader's feedback steps with these three added (before the others; the last one after)."""
    ours = (ScrubHiddenOutputs, LightenOutputs, DropEmptyComments)
    rest = [p for p in current if getattr(p, "__name__", p) not in {c.__name__ for c in ours}]
    return [ScrubHiddenOutputs, LightenOutputs, *rest, DropEmptyComments]


def configure_feedback(c: Any) -> None:
    """Called by a course folder's ``nbgrader_config.py`` (see :func:`enable_clean_feedback`)."""
    from nbgrader.converters import GenerateFeedback

    section = c.GenerateFeedback
    current = section.preprocessors if "preprocessors" in section else \
        GenerateFeedback.class_traits()["preprocessors"].default()
    c.GenerateFeedback.preprocessors = feedback_preprocessors(list(current))


def enable_clean_feedback(course: Path) -> None:
    """Make ``nbgrader generate_feedback`` in the course folder ``course`` use these steps."""
    config = Path(course) / "nbgrader_config.py"
    text = config.read_text(encoding="utf-8")
    if CONFIG_MARKER in text:
        return
    config.write_text(text.rstrip("\n") + f"\n\n{CONFIG_MARKER} (no hidden tests, scripts or empty boxes)\n"
                      "from induction_course.course.grading.feedback import configure_feedback  # noqa: E402\n"
                      "configure_feedback(c)\n", encoding="utf-8")
