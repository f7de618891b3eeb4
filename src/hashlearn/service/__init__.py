"""hashlearn.service"""
