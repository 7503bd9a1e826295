"""Serving a trained generator: the SavedModel with its signatures and warmup records
(`export`), one client interface for TF Serving over gRPC or REST and for a SavedModel
loaded in-process (`client`), and the TF Serving protocol messages the gRPC client speaks
without TensorFlow Serving's packages (`proto`).
"""
