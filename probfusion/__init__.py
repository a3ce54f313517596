"""probfusion."""
