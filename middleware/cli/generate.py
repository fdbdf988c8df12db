"""``ragpress generate``: compress, prompt and call a model in-process."""

from __future__ import annotations

import argparse
import json
import sys

from middleware.cli import common
from middleware.errors import InvalidArgument

def cmd_generate(args: argparse.Namespace) -> int:
    """Compress, prompt and call the model in-process; the answer goes to stdout."""
    import asyncio

    from middleware.library import Ragpress, as_budget, as_document
    from middleware.generation.generate import GenerateRequest, GenerationOptions, GenerateResult
    from middleware.types import CompressRequest, Stage

    if (args.target_tokens is None) == (args.keep_ratio is None):
        raise InvalidArgument("give exactly one of --target-tokens or --keep-ratio")
    engine = Ragpress(common.settings(args))
    line = common.single_line(args)
    request = GenerateRequest(
        compress=CompressRequest(query=args.query or "", budget=as_budget(args.target_tokens or args.keep_ratio),
                                 documents=tuple(as_document(d, i) for i, d in enumerate(line["documents"])),
                                 model=args.model, pipeline=(Stage(args.method),)),
        system_prompt=args.system or "", options=GenerationOptions(max_tokens=args.max_tokens),
        fallback=args.fallback)

    async def run() -> GenerateResult:
        prepared = await asyncio.to_thread(engine.generator.prepare, request, "cli")
        final = None
        async for item in engine.generator.run(prepared, tenant="cli", timeout=args.timeout, stream=True):
            if isinstance(item, str):
                if not args.json:
                    print(item, end="", flush=True)
            else:
                final = item
        return final

    result = asyncio.run(run())
    if args.json:
        from dataclasses import asdict

        print(json.dumps({
            "text": result.text, "model": result.model, "fell_back": result.fell_back,
            "fallback_reason": result.fallback_reason, "usage": asdict(result.usage),
            "cost": dict(asdict(result.cost), saved_usd=result.cost.saved_usd),
            "compressed_tokens": result.compression.compressed_tokens,
            "original_tokens": result.compression.original_tokens}))
    else:
        print()
        print(f"[{result.model}{' (fallback: ' + result.fallback_reason + ')' if result.fell_back else ''}; "
              f"prompt {result.usage.prompt_tokens} tokens (uncompressed {result.usage.original_prompt_tokens}, "
              f"cached {result.usage.cached_prompt_tokens}"
              f"{f', soft {result.usage.soft_prompt_tokens}' if result.usage.soft_prompt_tokens else ''}); "
              f"completion {result.usage.completion_tokens}; "
              f"${result.cost.cost_usd:.6f}]", file=sys.stderr)
    return 0


def add_commands(sub: "argparse._SubParsersAction") -> None:
    gen = sub.add_parser("generate", help="compress, prompt and call a model (in-process); prints the answer")
    gen.add_argument("--query", required=True)
    gen.add_argument("--doc", action="append", help="a document's text (repeatable)")
    gen.add_argument("--docs-json", help="file with a JSON list of {id, title, text, metadata}")
    gen.add_argument("--target-tokens", type=int, default=None)
    gen.add_argument("--keep-ratio", type=float, default=None)
    gen.add_argument("--model", default="local/smollm2", help="litellm model name or local/<name>")
    gen.add_argument("--method", default="extractive")
    gen.add_argument("--system", default=None, help="system prompt")
    gen.add_argument("--max-tokens", type=int, default=None)
    gen.add_argument("--fallback", choices=("fail", "retry", "local"), default=None)
    gen.add_argument("--timeout", type=float, default=None, help="seconds for the whole call")
    gen.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    gen.add_argument("--config", default=None, help="TOML settings file")
    gen.set_defaults(func=cmd_generate)
