"""hashlearn.text"""
