//! Keeps a request's body alive until its answer is written. actix-http
//! closes a connection whose body is unread when the answer ends, but drains
//! a chunked body without limit once nobody holds it; an early answer (403,
//! 404, 413, ...) therefore holds the body, and the connection is closed after
//! a bounded linger (`connection::LINGER_BYTES`).

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_core::Stream;

use crate::connection::Connection;

/// A request body shared between its reader and the answer.
#[derive(Clone)]
pub struct SharedPayload(Rc<RefCell<Payload>>);

impl SharedPayload {
    pub fn new(payload: Payload) -> Self {
        Self(Rc::new(RefCell::new(payload)))
    }

    /// What the request's reader gets instead of the payload itself.
    pub fn reader(&self) -> Payload {
        Payload::Stream {
            payload: Box::pin(self.clone()),
        }
    }

    /// Whether the body is not known to be complete. Takes what has arrived
    /// without waiting for more.
    fn unread(&self) -> bool {
        let mut payload = self.0.borrow_mut();
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            match Pin::new(&mut *payload).poll_next(&mut cx) {
                Poll::Ready(None) => return false,
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(_))) | Poll::Pending => return true,
            }
        }
    }
}

impl Stream for SharedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_next(cx)
    }
}

/// An answer's body that holds its request's body until it is dropped, then
/// tells the connection whether that body was read to its end.
pub struct HeldBody<B> {
    body: B,
    request_body: Option<SharedPayload>,
    connection: Option<Rc<Connection>>,
}

impl<B> HeldBody<B> {
    pub fn new(
        body: B,
        request_body: Option<SharedPayload>,
        connection: Option<Rc<Connection>>,
    ) -> Self {
        Self {
            body,
            request_body,
            connection,
        }
    }
}

impl<B> Drop for HeldBody<B> {
    fn drop(&mut self) {
        if let Some(connection) = &self.connection {
            let unread = self
                .request_body
                .as_ref()
                .is_some_and(SharedPayload::unread);
            connection.response_finished(unread);
        }
    }
}

impl<B: MessageBody + Unpin> MessageBody for HeldBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}
