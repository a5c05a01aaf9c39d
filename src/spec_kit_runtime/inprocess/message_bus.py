"""The in-process message bus: 1.0's front door for handlers living in the caller's process.

Plugins in 2.0 run in worker processes and are reached through the supervisor; this bus
serves handlers that live in the caller itself, with the same addresses, patterns,
delivery rules and scopes as the supervisor (``addressing``, ``patterns``, ``scopes``),
so a message behaves the same whichever side handles it.

Routing looks a message's address up in a cache of matching subscriptions, rebuilt only
when subscriptions change, so sending costs no scan over every subscription. Handlers run
outside the lock: a handler may subscribe, unsubscribe or send without deadlocking.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any

from spec_kit_contracts import Message

from spec_kit_runtime.errors import NoHandlerError, RoutingError, ScopeError
from spec_kit_runtime.policy.patterns import matches, pattern_problem
from spec_kit_runtime.policy.scopes import Scope
from spec_kit_runtime.wire.addressing import Delivery, address_of, delivery_of

logger = logging.getLogger(__name__)

Handler = Callable[[Any], Any]
Filter = Callable[[Any], bool]
Transform = Callable[[Any], Any]
Middleware = Callable[[Any], Any]

_CACHE_LIMIT = 4096
_STOP = object()  # wakes the queue thread when stop() is called


class DeliveryMode(Enum):
    """How ``send`` hands a message over (1.0 values)."""

    SYNC = "sync"  # deliver now; return what the delivery rule returns
    ASYNC = "async"  # deliver on a small executor; return a Future
    QUEUED = "queued"  # put on the bounded queue served by start()'s thread; True/False
    BROADCAST = "broadcast"  # every matching handler, whatever the address; list of results


@dataclass(frozen=True)
class Subscription:
    """One subscribe() call; ``plugin`` is set for scoped subscriptions."""

    id: str
    pattern: str
    handler: Handler
    priority: int
    order: int
    filter: Filter | None = None
    transform: Transform | None = None
    plugin: str | None = None

    def accepts(self, message: Any) -> bool:
        """False when the subscription's filter declines the message."""
        return self.filter is None or bool(self.filter(message))

    def call(self, message: Any) -> Any:
        """Run the handler on the (transformed) message."""
        return self.handler(self.transform(message) if self.transform else message)


class MessageBus:
    """Pattern-routed, priority-ordered, thread-safe delivery to in-process handlers."""

    def __init__(self, max_queue_size: int = 1000, async_workers: int = 4) -> None:
        self._lock = threading.RLock()
        self._subscriptions: dict[str, Subscription] = {}
        self._by_address: dict[str, tuple[Subscription, ...]] = {}
        self._middleware: list[Middleware] = []
        self._counter = itertools.count(1)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._max_queue_size = max_queue_size
        self._async_workers = async_workers
        self._executor: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._sent = 0
        self._dropped = 0

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread that delivers QUEUED messages."""
        with self._lock:
            if self._running:
                return
            self._running = True
            self._thread = threading.Thread(
                target=self._serve_queue, name="message-bus-queue", daemon=True
            )
            self._thread.start()
        logger.info("message bus started")

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is already queued, then stop the queue thread and the executor."""
        with self._lock:
            thread, self._thread = self._thread, None
            executor, self._executor = self._executor, None
            was_running, self._running = self._running, False
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("message bus queue thread did not stop within %.1fs", timeout)
        if executor is not None:
            executor.shutdown(wait=False)
        if was_running:
            logger.info("message bus stopped")

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(
        self,
        pattern: str,
        handler: Handler,
        priority: int = 50,
        filter: Filter | None = None,
        transform: Transform | None = None,
    ) -> str:
        """Route messages whose address matches ``pattern`` to ``handler``; lower priority first.

        Returns the subscription id for ``unsubscribe``. A bad pattern raises RoutingError.
        """
        return self._add(pattern, handler, priority, filter, transform, plugin=None)

    def _add(
        self,
        pattern: str,
        handler: Handler,
        priority: int,
        filter: Filter | None,
        transform: Transform | None,
        plugin: str | None,
    ) -> str:
        problem = pattern_problem(pattern)
        if problem:
            raise RoutingError(f"invalid subscription pattern: {problem}", pattern=str(pattern))
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        with self._lock:
            order = next(self._counter)
            sub = Subscription(
                f"sub_{order}", pattern, handler, priority, order, filter, transform, plugin
            )
            self._subscriptions[sub.id] = sub
            self._by_address.clear()
        logger.debug("subscribed %s to %r", sub.id, pattern)
        return sub.id

    def unsubscribe(self, sub_id: str) -> bool:
        """Remove a subscription; False when there was none with that id."""
        with self._lock:
            if self._subscriptions.pop(sub_id, None) is None:
                return False
            self._by_address.clear()
        return True

    def _drop_where(self, keep: Callable[[Subscription], bool]) -> int:
        with self._lock:
            doomed = [sid for sid, sub in self._subscriptions.items() if not keep(sub)]
            for sid in doomed:
                del self._subscriptions[sid]
            if doomed:
                self._by_address.clear()
        return len(doomed)

    def _handlers_for(self, address: str) -> tuple[Subscription, ...]:
        """Subscriptions matching ``address`` by priority, then age; cached until they change."""
        with self._lock:
            found = self._by_address.get(address)
            if found is None:
                found = tuple(
                    sorted(
                        (s for s in self._subscriptions.values() if matches(address, s.pattern)),
                        key=lambda s: (s.priority, s.order),
                    )
                )
                if len(self._by_address) >= _CACHE_LIMIT:
                    self._by_address.clear()
                self._by_address[address] = found
            return found

    # -- middleware --------------------------------------------------------------------

    def add_middleware(self, middleware: Middleware) -> None:
        """Run ``middleware(message)`` on every sent message; returning None drops it."""
        with self._lock:
            self._middleware.append(middleware)

    def remove_middleware(self, middleware: Middleware) -> bool:
        """Stop running ``middleware``; False when it was not installed."""
        with self._lock:
            try:
                self._middleware.remove(middleware)
            except ValueError:
                return False
            return True

    def _through_middleware(self, message: Any) -> Any:
        with self._lock:
            chain = tuple(self._middleware)
        for middleware in chain:
            message = middleware(message)
            if message is None:
                logger.debug("message dropped by middleware %r", middleware)
                return None
        return message

    # -- sending -----------------------------------------------------------------------

    def send(self, message: Message, mode: DeliveryMode = DeliveryMode.SYNC) -> Any:
        """Deliver ``message`` as ``mode`` says; see DeliveryMode for what comes back.

        SYNC follows the address's delivery rule: one handler's result (NoHandlerError
        when none), the list of hook results, or the number of event subscribers reached.
        Returns None when a middleware dropped the message.
        """
        if not isinstance(mode, DeliveryMode):
            raise RoutingError(f"unknown delivery mode: {mode!r}")
        message = self._through_middleware(message)
        if message is None:
            return None
        with self._lock:
            self._sent += 1
        if mode is DeliveryMode.SYNC:
            return self._deliver(message)
        if mode is DeliveryMode.ASYNC:
            return self._executor_for_async().submit(self._deliver, message)
        if mode is DeliveryMode.QUEUED:
            return self._enqueue(message)
        return self._broadcast(message)

    def _deliver(self, message: Any) -> Any:
        address = address_of(message)
        handlers = [s for s in self._handlers_for(address) if s.accepts(message)]
        delivery = delivery_of(address)
        if delivery is Delivery.ONE:
            if not handlers:
                raise NoHandlerError(f"no handler for '{address}'", address=address)
            return handlers[0].call(message)
        if delivery is Delivery.ALL_IN_ORDER:
            return [sub.call(message) for sub in handlers]
        return self._fan_out(address, message, handlers)

    @staticmethod
    def _fan_out(address: str, message: Any, handlers: Iterable[Subscription]) -> int:
        delivered = 0
        for sub in handlers:
            try:
                sub.call(message)
            except Exception:
                logger.exception("subscriber %s to '%s' failed", sub.id, address)
            else:
                delivered += 1
        return delivered

    def _broadcast(self, message: Any) -> list[Any]:
        address = address_of(message)
        results = []
        for sub in self._handlers_for(address):
            try:
                if sub.accepts(message):
                    results.append(sub.call(message))
            except Exception:
                logger.exception("broadcast handler %s for '%s' failed", sub.id, address)
        return results

    def _executor_for_async(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._async_workers, thread_name_prefix="message-bus-async"
                )
            return self._executor

    def _enqueue(self, message: Any) -> bool:
        with self._lock:
            if self._queue.qsize() >= self._max_queue_size:
                self._dropped += 1
                logger.warning(
                    "message queue full (%d); dropping message %s",
                    self._max_queue_size, getattr(message, "id", "?"),
                )
                return False
            self._queue.put(message)
            return True

    def _serve_queue(self) -> None:
        while True:
            message = self._queue.get()
            if message is _STOP:
                return
            try:
                self._deliver(message)
            except Exception:
                logger.exception("queued message %s failed", getattr(message, "id", "?"))

    # -- statistics --------------------------------------------------------------------

    def get_statistics(self) -> dict[str, Any]:
        """A snapshot of counters (1.0 keys plus sent/dropped/cached addresses)."""
        with self._lock:
            return {
                "handlers_count": len(self._subscriptions),
                "patterns_count": len({s.pattern for s in self._subscriptions.values()}),
                "subscriptions_count": len(self._subscriptions),
                "queue_size": self._queue.qsize(),
                "middleware_count": len(self._middleware),
                "is_running": self._running,
                "messages_sent": self._sent,
                "messages_dropped": self._dropped,
                "cached_addresses": len(self._by_address),
            }


class ScopedMessageBus(MessageBus):
    """A MessageBus where plugins subscribe and send only inside their scopes."""

    def __init__(self, max_queue_size: int = 1000, async_workers: int = 4) -> None:
        super().__init__(max_queue_size, async_workers)
        self._scopes: dict[str, Scope] = {}

    def register_scope(self, plugin_id: str, allowed_patterns: Iterable[str]) -> None:
        """Give ``plugin_id`` the 1.0 default scope plus ``allowed_patterns``."""
        patterns = list(allowed_patterns)
        for pattern in patterns:
            problem = pattern_problem(pattern)
            if problem:
                raise RoutingError(
                    f"invalid scope pattern for plugin '{plugin_id}': {problem}",
                    plugin=plugin_id, pattern=str(pattern),
                )
        with self._lock:
            self._scopes[plugin_id] = Scope(plugin_id, patterns)

    def unregister_scope(self, plugin_id: str) -> bool:
        """Forget a plugin's scope and drop its scoped subscriptions; False if unknown."""
        with self._lock:
            known = self._scopes.pop(plugin_id, None) is not None
            self._drop_where(lambda sub: sub.plugin != plugin_id)
        return known

    def scope_of(self, plugin_id: str) -> Scope:
        """The registered scope of ``plugin_id``; ScopeError when it has none."""
        with self._lock:
            scope = self._scopes.get(plugin_id)
        if scope is None:
            raise ScopeError(f"plugin '{plugin_id}' has no registered scope", plugin=plugin_id)
        return scope

    def subscribe_scoped(
        self, plugin_id: str, pattern: str, handler: Handler, **kwargs: Any
    ) -> str:
        """Subscribe on behalf of ``plugin_id``; ScopeError when ``pattern`` leaves its scope."""
        problem = pattern_problem(pattern)
        if problem:
            raise RoutingError(f"invalid subscription pattern: {problem}", plugin=plugin_id)
        self.scope_of(plugin_id).check_subscribe(pattern)
        priority = kwargs.pop("priority", 50)
        filter_, transform = kwargs.pop("filter", None), kwargs.pop("transform", None)
        if kwargs:
            raise TypeError(f"unexpected subscribe arguments: {', '.join(sorted(kwargs))}")
        return self._add(pattern, handler, priority, filter_, transform, plugin=plugin_id)

    def send_scoped(
        self, plugin_id: str, message: Message, mode: DeliveryMode = DeliveryMode.SYNC
    ) -> Any:
        """Send as ``plugin_id``: checked against its scope, then stamped with who sent it."""
        self.scope_of(plugin_id).check_send(address_of(message))
        message.metadata["source_plugin"] = plugin_id
        message.source = plugin_id
        return self.send(message, mode)
