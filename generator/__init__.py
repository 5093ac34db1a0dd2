"""The catalog generator: renders receipts into a static site (issue #5). Never imports torch."""
