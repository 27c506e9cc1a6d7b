//! Plots with an embedded font.
