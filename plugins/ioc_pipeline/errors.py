"""The errors more than one layer (extract, ingest, orchestration) agrees on."""


class BatchFailed(Exception):
    """The batch cannot commit and retrying cannot fix it (a contract broken, a rule failed, a
    refused key); the message is the one line an engineer acts on. Nothing was loaded."""


class NotColumnar(Exception):
    """A file delivery holds something only the row reader's rules say how to read (a quote, a
    ragged row, ...): the extract reads it row by row instead. Never a failure of the batch."""
