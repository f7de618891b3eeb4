"""hashlearn.apps"""
