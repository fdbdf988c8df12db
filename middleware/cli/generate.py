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

    if args.query is None:
        raise InvalidArgument("give --query")
    if (args.target_tokens is None) == (args.keep_ratio is None):
        raise InvalidArgument("give exactly one of --target-tokens or --keep-ratio")
    engine = Ragpress(common.settings(args))
    line = common.single_line(args)
    select = None
    if args.demo_pool:
        from middleware.library import build_select_request

        select = build_select_request(args.query, pool_name=args.demo_pool, model=args.model,
                                      method=args.demo_method, max_demonstrations=args.demo_k,
                                      budget=args.demo_budget)
    request = GenerateRequest(
        compress=CompressRequest(query=args.query or "", budget=as_budget(args.target_tokens or args.keep_ratio),
                                 documents=tuple(as_document(d, i) for i, d in enumerate(line["documents"])),
                                 model=args.model, pipeline=(Stage(args.method),)),
        system_prompt=args.system or "", options=GenerationOptions(max_tokens=args.max_tokens),
        fallback=args.fallback, select=select)

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
    common.add_request_flags(gen, model="local/smollm2")
    gen.add_argument("--system", help="system prompt")
    gen.add_argument("--max-tokens", type=int, metavar="N", help="most tokens to generate (default: the model's)")
    gen.add_argument("--fallback", choices=("fail", "retry", "local"),
                     help="on upstream failure (default: the llm_fallback setting, 'fail')")
    gen.add_argument("--timeout", type=float, help="seconds for the whole call (default: no limit)")
    gen.add_argument("--demo-pool", help="choose few-shot demonstrations from this stored pool")
    gen.add_argument("--demo-method", default="similar", help="demonstration strategy (with --demo-pool)")
    gen.add_argument("--demo-k", type=int, default=4, help="at most this many demonstrations")
    gen.add_argument("--demo-budget", type=int, metavar="N",
                     help="token ceiling of the demonstrations (default: no ceiling beyond --demo-k)")
    gen.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    gen.set_defaults(func=cmd_generate)
