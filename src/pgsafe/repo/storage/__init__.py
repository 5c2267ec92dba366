"""Storage backends behind one small interface (see :mod:`pgsafe.repo.storage.base`)."""
