"""llama.cpp, natively (issue #21): the toolchain, the ``llamacpp:`` backend, quantization, fidelity."""
