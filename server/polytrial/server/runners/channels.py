"""One gRPC channel per runner address, shared by every call to that address.

Opening a channel costs a TCP (and HTTP/2) handshake, so the server keeps one
per address for its lifetime instead of one per call; gRPC channels are
thread-safe and reconnect on their own after a runner restarts.
"""

from __future__ import annotations

import logging
import threading

import grpc

logger = logging.getLogger(__name__)

# Retries are ours (same deployment key, logged, bounded), so gRPC's built-in
# transparent retries are turned off to keep the attempt count exact.
_CHANNEL_OPTIONS = [
    ("grpc.enable_retries", 0),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


class ChannelPool:
    """Insecure channels to runners and metric services, keyed by address."""

    def __init__(self) -> None:
        # Guards `_channels`; held only while looking up or creating a
        # channel, never during a call.
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}

    def get(self, address: str) -> grpc.Channel:
        """Returns the channel to `address`, opening it on first use."""
        with self._lock:
            channel = self._channels.get(address)
            if channel is None:
                channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
                self._channels[address] = channel
                logger.debug("opened channel to runner %s", address)
            return channel

    def __len__(self) -> int:
        with self._lock:
            return len(self._channels)

    def close(self) -> None:
        """Closes every channel; a later `get` opens a new one."""
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()
