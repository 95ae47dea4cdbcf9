"""Stream families: generators of labelled emotion timelines, one module each.

`blind` was written without reading the detector, its training data or its benchmark, and is held out
of training: it is the exam the detector has not seen.
"""
