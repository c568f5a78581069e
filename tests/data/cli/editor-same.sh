#!/bin/sh
# An editor that saves the file unchanged.
exit 0
