"""Cache-aware prompt assembly.

A prompt is a system message and a user message rendered from a template with
four parts: ``{system}`` (system message), ``{demonstrations}``, ``{context}``
and ``{question}``. Templates put the stable parts first, in a canonical order
(demonstrations sorted by id), so requests that share a system prompt, the same
demonstrations or the same documents share a token prefix, and a KV prefix
cache (local models) or a provider's prompt cache (hosted models) can reuse it.
The question, which changes with every request, always comes last.

Templates are registered by name; a request may also pass the template text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from middleware.errors import InvalidArgument, UnknownName
from middleware.options import format_fields
from middleware.types import Demonstration  # noqa: F401  (a kernel type; re-exported for callers of this module)

FIELDS = ("demonstrations", "context", "question")
DEFAULT_SYSTEM = "Answer the question using only the context. Be brief."


@dataclass(frozen=True)
class Prompt:
    """The assembled prompt as chat messages, plus the user text for counting."""

    system: str
    user: str

    def messages(self) -> list[dict[str, str]]:
        out = [{"role": "system", "content": self.system}] if self.system else []
        return out + [{"role": "user", "content": self.user}]

    @property
    def text(self) -> str:
        """System and user text joined, for token counting in a tokenizer without a chat template."""
        return f"{self.system}\n\n{self.user}" if self.system else self.user


TEMPLATES: dict[str, str] = {
    "default": "{demonstrations}Context:\n{context}\n\nQuestion: {question}\nAnswer:",
    "context-only": "{context}\n\n{question}",
}


def render_demonstrations(demos: Sequence[Demonstration]) -> str:
    """Demonstrations in canonical order (by id), each as a Question/Answer pair
    (the demonstration selector's default rendering)."""
    from retrievers.demos.packing import DEFAULT_TEMPLATE, render

    return render(sorted(demos, key=lambda d: d.id), DEFAULT_TEMPLATE)


def resolve_template(template: str, default: str = "default") -> str:
    """A registered name, or template text containing at least ``{context}`` and ``{question}``."""
    template = template or default
    if "{" not in template:
        if template not in TEMPLATES:
            raise UnknownName("prompt template", template, TEMPLATES)
        template = TEMPLATES[template]
    names = format_fields(template, FIELDS, "template")
    missing = [f for f in ("context", "question") if f not in names]
    if missing:
        raise InvalidArgument(f"template must contain {{{missing[0]}}}")
    # Cache-aware order: the per-request question must come after the shared parts.
    if template.index("{question}") < template.index("{context}"):
        raise InvalidArgument("template must put {question} after {context} so prompts share a cacheable prefix")
    return template


def assemble(template: str, system: str, context: str, question: str,
             demonstrations: Sequence[Demonstration] = (), demonstrations_text: str | None = None) -> Prompt:
    """Render the prompt; ``template`` must come from :func:`resolve_template`.

    ``demonstrations_text`` (a selection's rendered block, already in its order) replaces
    the rendering of ``demonstrations``."""
    demos = demonstrations_text if demonstrations_text is not None else render_demonstrations(demonstrations)
    user = template.format(demonstrations=demos, context=context, question=question)
    return Prompt(system=system, user=user)


def default_messages(question: str, context: str) -> list[dict[str, str]]:
    """The chat messages of a Generate request with the default template and system message:
    the prompt the soft-token projector is trained and measured on (soft tokens go where
    ``context`` is)."""
    return assemble(resolve_template("default"), DEFAULT_SYSTEM, context, question).messages()
