"""Labelled data: read it (files, folders, the Hub, packaged sets), check it, encode its labels, split it."""
