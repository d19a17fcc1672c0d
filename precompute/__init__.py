"""Offline half of cxrviz: builds the artifact the app serves (torch and UMAP live here)."""
