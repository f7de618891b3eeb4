"""hashlearn.crossmodal"""
