#!/bin/sh
# An editor that exits with an error.
exit 3
