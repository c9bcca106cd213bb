"""The timing firmware of a `--board` project (firmware_timing.c, `make -f firmware.mk timing`):
what its template needs to know about a board besides memory, namely the clock its cycle
counts are converted at and the UART it can print on.

Cycles come from the DWT cycle counter where the core has one (M3, M4, M7, M33, M55) and from
SysTick on the M0 and M0+, which have no DWT cycle counter. QEMU 7.2 models no DWT (its
registers read as zero, so CYCCNT never moves) but does model SysTick, driven by the board's
system clock in virtual time; the firmware checks at run time that CYCCNT moves and falls back
to SysTick when it does not, and prints which counter it used. Under QEMU the figures are
therefore the emulator's time, not the board's: they show that the firmware runs, nothing more.

The UART variant (-DTE_TIMING_UART=1) drives the peripheral by its registers, no vendor HAL:
enable the GPIO and USART clocks, put the TX pin in its alternate function, set the baud
divisor from the peripheral clock at reset (the firmware changes no clock), enable the
transmitter. The pins are those of each preset's example board (the ST-LINK virtual COM port).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .boards import Board

# Cores without a DWT cycle counter (ARMv6-M): SysTick only.
SYSTICK_ONLY_CORES = ("cortex-m0", "cortex-m0plus")

# QEMU's system clock of the machines it models, which drives SysTick there (hw/arm/mps2.c
# SYSCLK_FRQ, hw/arm/mps2-tz.c sysclk_frq, hw/arm/nrf51_soc.c HCLK_FRQ in QEMU 7.2).
QEMU_SYSCLK_HZ = {"mps2-an385": 25_000_000, "mps2-an386": 25_000_000,
                  "mps2-an500": 25_000_000, "mps2-an505": 20_000_000,
                  "mps3-an547": 32_000_000, "microbit": 16_000_000}

BAUD = 115_200


@dataclass(frozen=True)
class Uart:
    """A register-level UART: `family` selects the driver in firmware_timing.c.j2.

    stm32-v1: the F4's USART (SR/DR/BRR/CR1 at 0x00/0x04/0x08/0x0C, UE = CR1 bit 13);
    stm32-v2: the F7's and H7's (CR1/BRR/ISR/TDR at 0x00/0x0C/0x1C/0x28, UE = CR1 bit 0);
    cmsdk: the Arm CMSDK APB UART of the MPS2 boards (DATA/STATE/CTRL/BAUDDIV), which QEMU
    models and connects to its serial console."""

    family: str
    name: str  # for comments and the README: the peripheral, pins and where they go
    base: int
    pclk_hz: int  # the peripheral clock at reset, which the baud divisor is computed from
    gpio_base: int = 0
    tx_pin: int = 0
    af: int = 0
    gpio_enable_reg: int = 0  # RCC register address and bit that clock the GPIO port
    gpio_enable_bit: int = 0
    uart_enable_reg: int = 0  # RCC register address and bit that clock the USART
    uart_enable_bit: int = 0

    @property
    def brr(self) -> int:
        # Oversampling by 16: BRR = f_pclk / baud on both STM32 USART versions (on the F4's,
        # mantissa << 4 | fraction is the same number); rounded to nearest.
        return (self.pclk_hz + BAUD // 2) // BAUD


_RCC_F4F7 = 0x40023800  # AHB1ENR at +0x30, APB1ENR at +0x40, APB2ENR at +0x44
_RCC_H7 = 0x58024400  # AHB4ENR at +0xE0, APB1LENR at +0xE8

UARTS: dict[str, Uart] = {
    # 32F746G-DISCO: USART1 TX on PA9 (AF7) to the ST-LINK virtual COM port; HSI 16 MHz at reset.
    "stm32f746": Uart("stm32-v2", "USART1, TX on PA9 (AF7): the 32F746G-DISCO's ST-LINK VCP",
                      0x40011000, 16_000_000, gpio_base=0x40020000, tx_pin=9, af=7,
                      gpio_enable_reg=_RCC_F4F7 + 0x30, gpio_enable_bit=0,
                      uart_enable_reg=_RCC_F4F7 + 0x44, uart_enable_bit=4),
    # NUCLEO-F412ZG: USART3 TX on PD8 (AF7) to the ST-LINK VCP; HSI 16 MHz at reset.
    "stm32f412": Uart("stm32-v1", "USART3, TX on PD8 (AF7): the NUCLEO-F412ZG's ST-LINK VCP",
                      0x40004800, 16_000_000, gpio_base=0x40020C00, tx_pin=8, af=7,
                      gpio_enable_reg=_RCC_F4F7 + 0x30, gpio_enable_bit=3,
                      uart_enable_reg=_RCC_F4F7 + 0x40, uart_enable_bit=18),
    # NUCLEO-H743ZI: USART3 TX on PD8 (AF7) to the ST-LINK VCP; HSI 64 MHz at reset, and
    # USART3's kernel clock is pclk1 (64 MHz, every prescaler at /1).
    "stm32h743": Uart("stm32-v2", "USART3, TX on PD8 (AF7): the NUCLEO-H743ZI's ST-LINK VCP",
                      0x40004800, 64_000_000, gpio_base=0x58020C00, tx_pin=8, af=7,
                      gpio_enable_reg=_RCC_H7 + 0xE0, gpio_enable_bit=3,
                      uart_enable_reg=_RCC_H7 + 0xE8, uart_enable_bit=18),
}
# The MPS2 FPGA images: CMSDK UART0 at 0x40004000 (QEMU's serial console).
for _m in ("mps2-an385", "mps2-an385-m0plus", "mps2-an386", "mps2-an500"):
    UARTS[_m] = Uart("cmsdk", "CMSDK APB UART0 (QEMU's serial console)", 0x40004000, 25_000_000)


def timing_context(board: Board) -> dict[str, Any]:
    """The timing template's values for `board`: counter, clock and UART (None: no UART
    driver, -DTE_TIMING_UART=1 stops the build with an #error)."""
    clock = board.clock_hz or QEMU_SYSCLK_HZ.get(board.qemu_machine or "")
    uart = UARTS.get(board.name)
    return {"dwt": board.core not in SYSTICK_ONLY_CORES,
            "clock_hz": clock or 0,
            "uart": None if uart is None else {**asdict(uart), "brr": uart.brr}}
