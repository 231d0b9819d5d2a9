"""One shared BLE scanner for all sessions of a collector.

Many sensors reconnecting at once must not start many scanners (BlueZ and
most adapters handle one scan well, several badly). :class:`Discovery` runs a
single ``bleak.BleakScanner`` while at least one session waits for an
advertisement and hands each session the first fresh advertisement of its
sensor's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from collector.errors import CollectorError, CollectorReason

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sighting:
    """A device seen advertising: what bleak reports, for connecting and detection."""

    device: BLEDevice
    name: str | None
    service_uuids: tuple[str, ...]
    rssi: int | None


def _key(address: str) -> str:
    return address.strip().upper()


class Discovery:
    """Waits for advertisements of given addresses on one shared scanner.

    Parameters
    ----------
    scanner_backend:
        A bleak scanner backend class (``BleakScanner(backend=...)``); None
        for the platform's own.
    scanner_kwargs:
        Extra keyword arguments for ``BleakScanner`` (e.g. ``adapter``).
    """

    def __init__(
        self,
        scanner_backend: type[Any] | None = None,
        **scanner_kwargs: Any,
    ) -> None:
        self._backend = scanner_backend
        self._kwargs = scanner_kwargs
        self._waiters: dict[str, list[asyncio.Future[Sighting]]] = {}
        self._scanner: BleakScanner | None = None
        self._lock = asyncio.Lock()
        self.advertisements = 0

    def _on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        self.advertisements += 1
        waiters = self._waiters.pop(_key(device.address), None)
        if not waiters:
            return
        seen = Sighting(
            device=device,
            name=adv.local_name or device.name,
            service_uuids=tuple(u.lower() for u in adv.service_uuids),
            rssi=adv.rssi,
        )
        for fut in waiters:
            if not fut.done():
                fut.set_result(seen)

    async def _ensure_scanning(self) -> None:
        async with self._lock:
            if self._scanner is not None:
                return
            kwargs: dict[str, Any] = dict(self._kwargs)
            if self._backend is not None:
                kwargs["backend"] = self._backend
            scanner = BleakScanner(self._on_advertisement, **kwargs)
            await scanner.start()
            self._scanner = scanner
            log.debug("scanning started")

    async def _stop_if_idle(self) -> None:
        async with self._lock:
            if self._scanner is None or any(self._waiters.values()):
                return
            scanner, self._scanner = self._scanner, None
            with contextlib.suppress(Exception):  # stopping a dead scanner must not mask more
                await scanner.stop()
            log.debug("scanning stopped")

    async def find(self, address: str, timeout_s: float) -> Sighting:
        """The next advertisement of ``address``.

        Raises
        ------
        CollectorError
            ``DEVICE_NOT_FOUND`` after ``timeout_s`` seconds (host clock).
        """
        fut: asyncio.Future[Sighting] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(_key(address), []).append(fut)
        try:
            await self._ensure_scanning()
            # radio time: the host's clock (a simulation holds sensor time meanwhile)
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError as exc:
            raise CollectorError(
                f"sensor {address} not seen advertising within {timeout_s:g} s",
                CollectorReason.DEVICE_NOT_FOUND,
                hint="check that it is charged, in range and not connected to another host "
                "(a phone app keeps it from advertising)",
            ) from exc
        finally:
            waiting = self._waiters.get(_key(address))
            if waiting and fut in waiting:
                waiting.remove(fut)
                if not waiting:
                    del self._waiters[_key(address)]
            await self._stop_if_idle()

    async def scan(self, timeout_s: float) -> list[tuple[Sighting, str]]:
        """Supported sensors advertising nearby, with their detected type, strongest first.

        Detection uses each protocol's advertised service UUIDs and name
        patterns (``collector.protocols.detect``); other devices are left out.
        For filling in the pairing table.
        """
        from collector.protocols import detect

        kwargs: dict[str, Any] = dict(self._kwargs)
        if self._backend is not None:
            kwargs["backend"] = self._backend
        found = await BleakScanner.discover(timeout=timeout_s, return_adv=True, **kwargs)
        out = []
        for device, adv in found.values():
            name = adv.local_name or device.name
            uuids = tuple(u.lower() for u in adv.service_uuids)
            proto = detect(name, uuids)
            if proto is not None:
                out.append((Sighting(device, name, uuids, adv.rssi), proto.kind))
        out.sort(key=lambda it: -(it[0].rssi if it[0].rssi is not None else -999))
        return out

    async def close(self) -> None:
        for waiters in self._waiters.values():
            for fut in waiters:
                fut.cancel()
        self._waiters.clear()
        await self._stop_if_idle()
