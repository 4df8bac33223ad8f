"""The one error every layer (extract, ingest, orchestration) agrees on."""


class BatchFailed(Exception):
    """The batch cannot commit and retrying cannot fix it (a contract broken, a rule failed, a
    refused key); the message is the one line an engineer acts on. Nothing was loaded."""
