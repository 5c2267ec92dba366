"""One module per part of the benchmark, each with a ``run(bench, ...)`` that returns the
part's results (``alternation.part_result``'s shape)."""
