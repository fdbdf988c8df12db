"""Few-shot demonstration selection: pools and strategies (the methods floor).

- :mod:`retrievers.demos.pools`: named pools per tenant on the collections machinery
  (embedded inputs, FAISS, upsert and delete, persistence), and inline pools;
- :mod:`retrievers.demos.registry`: strategies by name, one module each
  (``random``, ``similar``, ``mmr``, ``balanced``, ``dynamic``), all meeting
  :class:`retrievers.demos.base.Strategy`;
- :mod:`retrievers.demos.packing`: the budget, the order (a fixed core first, then
  nearest last) and the rendering, common to every strategy.

Composing them with compression of long demonstrations and with Generate is the
service's job (:mod:`middleware.demonstrations`)::

    from middleware.embedders import hashing_embedder
    from middleware.types import Demonstration
    from retrievers.demos import registry
    from retrievers.demos.base import SelectionJob
    from retrievers.demos.pools import DemoPools

    pool = DemoPools(hashing_embedder).inline([Demonstration("1", "Who wrote Hamlet?", "human")])
    job = SelectionJob("Who painted it?", pool.embed("Who painted it?"), pool, k=1)
    print(registry.create("similar", {}).select(job).ranked)
"""
