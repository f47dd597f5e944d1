"""FPGA flow for SushiAccel: board registry, fit check, PLLs, bitstream build and reports.

Submodules: :mod:`.boards` (what each board offers), :mod:`.fit` (does a preset fit, checked
before synthesis), :mod:`.clocks` (PLL clock domains), :mod:`.flow` (Amaranth platform build with
the YoWASP or system tools, nextpnr report -> ``report.json``), :mod:`.depth` (LUT levels
per register input of the synthesised netlist, in the reports), :mod:`.uart` and
:mod:`.host_link` (the UART host link), :mod:`.spi_flash` (weights in the board's SPI flash).
"""
