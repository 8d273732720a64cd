"""Batch streams shared by the SAE tests (imported as ``from _streams import ...``)."""

from saetm.sae.data import BatchStream


class Interrupting(BatchStream):
    """A stream that dies after ``limit`` batches, like a process being stopped."""

    def __init__(self, *args, limit, **kw):
        super().__init__(*args, **kw)
        self.limit = limit

    def next_batch(self):
        if self.limit == 0:
            raise KeyboardInterrupt
        self.limit -= 1
        return super().next_batch()
