//! Blob uploads that survive a broken connection, a 5xx or a registry
//! outage. The body goes as one `PUT` (or as `PATCH` chunks of a given
//! size). When an attempt fails in a way worth retrying, the upload waits
//! (the transport's backoff and time budget, said on stderr), asks the
//! registry where the upload stands (`GET` its location: `Range: 0-<last>`)
//! and goes on from there with a `PATCH` whose `Content-Range` continues
//! that offset, reading the source again from the offset: a file of the
//! local store, or the blob of another registry (a copy) read with `Range`.
//! Nothing is held in memory. An upload the registry no longer knows (or
//! will not resume) starts again in a new session, as docker does; one
//! that is given up is cancelled (`DELETE`), so no partial data stays on
//! the registry.

use super::{push_scope, refused, ApiError, Registry};
use crate::transport::retry::RetryPolicy;
use crate::transport::{Body, Request};
use reqwest::{Method, Response};
use roci::Digest;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Where the bytes of an upload come from; read again from any offset.
pub enum Source<'s> {
    /// A file (a blob of the local store).
    File(&'s Path),
    /// The same blob in a repository of another registry (a copy).
    Blob {
        registry: &'s Registry<'s>,
        repo: &'s str,
    },
}

/// The upload sessions of one [`Registry`] not yet completed or cancelled,
/// so an interrupted push can cancel them.
#[derive(Default)]
pub(super) struct OpenUploads {
    next: AtomicU64,
    open: Mutex<HashMap<u64, (String, String)>>,
}

impl OpenUploads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (String, String)>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where an upload stands, as the registry says.
enum Standing {
    /// It holds this many bytes (and may have moved to a new location).
    At(u64),
    /// It is gone, or will not be resumed.
    Gone,
}

impl Registry<'_> {
    /// Uploads the blob `digest` of `size` bytes from `source` into `repo`:
    /// one `PUT`, or `PATCH` chunks of `chunk` bytes (a file source only),
    /// resumed as the module says.
    pub async fn upload(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: &Source<'_>,
        chunk: Option<u64>,
    ) -> Result<(), ApiError> {
        let what = format!("uploading blob {digest} to {}/{repo}", self.host);
        let id = self.uploads.next.fetch_add(1, Ordering::Relaxed);
        let result = self
            .upload_session(repo, digest, size, source, chunk, &what, id)
            .await;
        let left = self.uploads.lock().remove(&id);
        if let (Err(_), Some((repo, location))) = (&result, left) {
            self.cancel_upload(&repo, &location).await;
        }
        result
    }

    /// Cancels every upload opened through this registry and not finished
    /// (after a push was interrupted).
    pub async fn cancel_open_uploads(&self) {
        let open: Vec<(String, String)> = self.uploads.lock().drain().map(|(_, v)| v).collect();
        for (repo, location) in open {
            self.cancel_upload(&repo, &location).await;
        }
    }

    /// `DELETE`s an upload session: one try, its outcome only logged.
    async fn cancel_upload(&self, repo: &str, location: &str) {
        let cancel = Request::new(Method::DELETE, self.url(location), push_scope(repo));
        match self.transport.attempt(&cancel).await {
            Ok(response) => tracing::debug!("cancelled upload {location}: {}", response.status()),
            Err(e) => tracing::debug!("cancelling upload {location}: {e}"),
        }
    }

    /// Opens a session (remembered as open under `id`) and sends the blob.
    #[allow(clippy::too_many_arguments)]
    async fn upload_session(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: &Source<'_>,
        chunk: Option<u64>,
        what: &str,
        id: u64,
    ) -> Result<(), ApiError> {
        let remember = |location: &str| {
            self.uploads
                .lock()
                .insert(id, (repo.to_string(), location.to_string()));
        };
        let mut location = self.open_upload(repo, what).await?;
        remember(&location);
        let mut retries = self.transport.retry_policy().start();
        let mut offset = 0u64;
        // Whether the bytes at the registry came partly from an earlier attempt.
        let mut resumed = false;
        loop {
            let completing = offset == size || (offset == 0 && chunk.is_none());
            let end = match (completing, chunk, source) {
                (true, _, _) | (false, None, _) | (false, Some(_), Source::Blob { .. }) => size,
                (false, Some(chunk), Source::File(_)) => {
                    offset.saturating_add(chunk.max(1)).min(size)
                }
            };
            let mut request = if completing {
                self.completion(repo, &location, digest)
            } else {
                Request::new(Method::PATCH, self.url(&location), push_scope(repo))
                    .header("content-range", format!("{offset}-{}", end - 1))
            };
            if end > offset {
                request = request.header("content-type", "application/octet-stream");
            }
            let (error, why, retry_after) =
                match self.send_part(request, source, digest, offset, end).await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        match status {
                            201 | 204 if completing => return Ok(()),
                            202 if !completing => {
                                location = self.location(what, &response)?;
                                remember(&location);
                                offset = end;
                                retries.progressed();
                                continue;
                            }
                            // A resumed upload that did not verify (the part the
                            // registry kept is not trusted), or a part that does not
                            // continue the upload (`0-0` holds 0 or 1 byte): once
                            // more from scratch in a new session.
                            400 if completing && resumed => {
                                let error = refused(what.to_string(), response).await;
                                tracing::warn!("{error}; uploading again in a new session");
                                self.start_over(repo, what, &mut location).await?;
                                remember(&location);
                                (offset, resumed) = (0, false);
                                continue;
                            }
                            416 => {
                                let error = refused(what.to_string(), response).await;
                                if retries.failed(None).is_none() {
                                    return Err(error);
                                }
                                tracing::warn!("{error}; uploading again in a new session");
                                self.start_over(repo, what, &mut location).await?;
                                remember(&location);
                                (offset, resumed) = (0, false);
                                continue;
                            }
                            _ if RetryPolicy::retryable_status(status) => {
                                let why = response.status().to_string();
                                let retry_after = response
                                    .headers()
                                    .get("retry-after")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string);
                                (refused(what.to_string(), response).await, why, retry_after)
                            }
                            _ => return Err(refused(what.to_string(), response).await),
                        }
                    }
                    Err(ApiError::Transport(e)) if e.is_connection() => {
                        let why = e.cause();
                        (ApiError::Transport(e), why, None)
                    }
                    Err(e) => return Err(e),
                };
            let Some(delay) = retries.failed(retry_after.as_deref()) else {
                return Err(error);
            };
            retries.wait(what, &why, delay).await;
            let standing = self.standing(repo, &mut location, what).await?;
            remember(&location);
            match standing {
                Standing::At(at) if at <= size => {
                    tracing::debug!("{what}: resuming at {at} of {size} bytes");
                    offset = at;
                    // `0-0` may mean one byte kept: a failed check starts over.
                    resumed = true;
                }
                _ => {
                    // The completing PUT may have arrived while its answer did not.
                    if self.blob_size(repo, digest).await? == Some(size) {
                        return Ok(());
                    }
                    self.start_over(repo, what, &mut location).await?;
                    remember(&location);
                    (offset, resumed) = (0, false);
                }
            }
        }
    }

    /// Cancels the session at `location` and opens a new one in its place.
    async fn start_over(
        &self,
        repo: &str,
        what: &str,
        location: &mut String,
    ) -> Result<(), ApiError> {
        self.cancel_upload(repo, location).await;
        *location = self.open_upload(repo, what).await?;
        Ok(())
    }

    /// Sends one request of an upload with the bytes `offset..end` of the source.
    async fn send_part(
        &self,
        request: Request,
        source: &Source<'_>,
        digest: &Digest,
        offset: u64,
        end: u64,
    ) -> Result<Response, ApiError> {
        let len = end.saturating_sub(offset);
        let response = match source {
            _ if len == 0 => self.transport.attempt(&request).await?,
            Source::File(path) => {
                let body = Body::File {
                    path: path.to_path_buf(),
                    offset,
                    len,
                };
                self.transport.attempt(&request.body(body)).await?
            }
            Source::Blob { registry, repo } => {
                let from = registry.blob(repo, digest, offset).await?;
                let body = reqwest::Body::wrap_stream(from.bytes_stream());
                let request = request.header("content-length", len.to_string());
                self.transport.send_stream(&request, body).await?
            }
        };
        Ok(response)
    }

    /// Asks the registry how much of the upload at `location` it holds
    /// (and follows the location it gives).
    async fn standing(
        &self,
        repo: &str,
        location: &mut String,
        what: &str,
    ) -> Result<Standing, ApiError> {
        let status = Request::new(Method::GET, self.url(location), push_scope(repo));
        let response = self.transport.send(&status).await?;
        match response.status().as_u16() {
            200 | 204 => {}
            status if RetryPolicy::retryable_status(status) => {
                return Err(refused(what.to_string(), response).await)
            }
            _ => return Ok(Standing::Gone),
        }
        if let Ok(moved) = self.location(what, &response) {
            *location = moved;
        }
        let held = response
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .and_then(held_by_range);
        Ok(held.map_or(Standing::Gone, Standing::At))
    }
}

/// The bytes an upload holds by its `Range: 0-<last>` header (`0-0` is
/// taken as none: Distribution writes it for both 0 and 1 byte).
fn held_by_range(range: &str) -> Option<u64> {
    let range = range.trim();
    let range = range.strip_prefix("bytes=").unwrap_or(range);
    let (start, last) = range.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    match last.trim().parse::<u64>().ok()? {
        0 => Some(0),
        last => last.checked_add(1),
    }
}

#[cfg(test)]
mod tests {
    use super::held_by_range;

    #[test]
    fn ranges() {
        assert_eq!(held_by_range("0-0"), Some(0));
        assert_eq!(held_by_range("0-1023"), Some(1024));
        assert_eq!(held_by_range("bytes=0-9"), Some(10));
        assert_eq!(held_by_range("5-9"), None);
        assert_eq!(held_by_range("0-18446744073709551615"), None);
        assert_eq!(held_by_range("nonsense"), None);
    }
}
