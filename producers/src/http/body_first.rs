//! Write requests are read whole (within the body limit) before any handler runs. An early
//! refusal (401 from the initData check, 429 from the rate limit) would otherwise answer while
//! the body is still on its way, and hyper closes a keep-alive connection whose request body is
//! unread when its response goes out: a client that sends the body after the headers would see
//! its next request on that connection fail. Bodies are at most `max_body_bytes` (64 KiB by
//! default) and bounded in time by the listener's body timeout, so reading them first costs
//! little. A body over the limit is refused (413) as soon as that is known, and the connection is
//! then closed, which is right: the rest of it is not worth reading.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::json::unreadable;

pub(super) async fn read_body_first(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &state).await;
    match bytes {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(rejection) => unreadable(&rejection, &state).into_response(),
    }
}
