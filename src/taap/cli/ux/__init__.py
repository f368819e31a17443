"""The CLI's presentation: output, help texts, and the small commands around them."""
