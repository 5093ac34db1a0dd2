"""Exports: a verified receipt rewritten in formats other tools read (Hugging Face card, CycloneDX).

An export is only ever made from a receipt that verified against the caller's pinned trust root:
exporting unverified numbers would launder them into formats that carry no signature.

Exporters take the `receipts.verify.VerifiedReceipt` that `receipts.verify.verify_receipt` returns, and
read only what it holds: the bytes and documents verification read, never the bundle folder again.
"""

__all__: list[str] = []
