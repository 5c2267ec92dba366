"""What every part of the benchmark uses: measuring a command (``measure``), running
contenders alternately (``alternation``), sizes and folders (``files``), SQL helpers
(``db``), the bench's state and clusters (``bench``) and the machine's description
(``machine``)."""
