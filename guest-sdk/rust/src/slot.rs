//! The one handler value an instance keeps between the host's calls. An
//! instance serves one request (or one WebSocket connection), so one slot is
//! enough; it is type-erased because statics cannot be generic.

use std::any::Any;
use std::cell::RefCell;

thread_local! {
    static HANDLER: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `f` on the current handler, making one with `Default` if the host
/// did not call `initialize` first.
pub(crate) fn with_handler<T: Default + 'static, R>(f: impl FnOnce(&mut T) -> R) -> R {
    crate::panic_hook::install();
    HANDLER.with_borrow_mut(|slot| {
        if !slot.as_ref().is_some_and(|handler| handler.is::<T>()) {
            *slot = Some(Box::new(T::default()));
        }
        let handler = slot
            .as_mut()
            .and_then(|handler| handler.downcast_mut::<T>())
            .expect("the handler slot holds the exported type");
        f(handler)
    })
}

/// Installs the handler `initialize` made.
pub(crate) fn set<T: 'static>(handler: T) {
    crate::panic_hook::install();
    HANDLER.with_borrow_mut(|slot| *slot = Some(Box::new(handler)));
}
