//! Paged listings: `?page=0&size=100` in, `{"totalSize", "page", "size", "results"}` out.

use serde::{Deserialize, Serialize};

use crate::validation::ValidationErrors;

/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The highest page number: the document's `int32` bound.
pub const MAX_PAGE: u32 = i32::MAX as u32;

/// Which page of a listing to return: the `page` and `size` query parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "utoipa", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct PageRequest {
    /// The page, from 0 (default 0).
    #[cfg_attr(feature = "utoipa", param(required = false))]
    pub page: u32,
    /// How many items a page holds, 1 to 100 (default 100).
    #[cfg_attr(
        feature = "utoipa",
        param(required = false, minimum = 1, maximum = 100)
    )]
    pub size: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 0,
            size: MAX_PAGE_SIZE,
        }
    }
}

impl PageRequest {
    /// Reads the `page` and `size` query parameters, reporting both errors at once.
    ///
    /// ```
    /// use runner_core::page::PageRequest;
    /// assert_eq!(PageRequest::parse(None, Some("10")).unwrap().size, 10);
    /// assert_eq!(PageRequest::parse(Some("-1"), Some("101")).unwrap_err().errors.len(), 2);
    /// ```
    pub fn parse(page: Option<&str>, size: Option<&str>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let page = match page.map(str::parse::<u32>) {
            None => 0,
            Some(Ok(page)) if page <= MAX_PAGE => page,
            Some(_) => {
                errors.add(
                    "page",
                    format!("must be a whole number from 0 to {MAX_PAGE}"),
                );
                0
            }
        };
        let size = match size.map(str::parse::<u32>) {
            None => MAX_PAGE_SIZE,
            Some(Ok(size)) if (1..=MAX_PAGE_SIZE).contains(&size) => size,
            Some(_) => {
                errors.add(
                    "size",
                    format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                );
                MAX_PAGE_SIZE
            }
        };
        errors.into_result().map(|()| Self { page, size })
    }

    /// How many items come before this page.
    pub fn offset(self) -> u64 {
        u64::from(self.page) * u64::from(self.size)
    }

    /// Cuts this page out of a full, ordered listing (for stores that list in memory).
    pub fn slice<T: Clone>(self, all: &[T]) -> Page<T> {
        let start = usize::try_from(self.offset())
            .unwrap_or(usize::MAX)
            .min(all.len());
        let end = start.saturating_add(self.size as usize).min(all.len());
        Page::new(self, all.len() as u64, all[start..end].to_vec())
    }
}

fn exact() -> bool {
    true
}

fn is_exact(exact: &bool) -> bool {
    *exact
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// How many items the whole listing has; a lower bound when `total_size_exact` is false.
    pub total_size: u64,
    /// False when the listing stopped counting (a search of executions counts at most
    /// [`COUNT_AHEAD`](crate::search::COUNT_AHEAD) matches past the page, so that a page costs the
    /// same at any size of the store): there are at least `total_size` items. Omitted when true.
    #[serde(default = "exact", skip_serializing_if = "is_exact")]
    #[cfg_attr(feature = "utoipa", schema(default = true))]
    pub total_size_exact: bool,
    /// The page number.
    pub page: u32,
    /// How many items this page holds (as the documents' examples show it).
    pub size: u32,
    /// The items.
    pub results: Vec<T>,
}

impl<T> Page<T> {
    /// A page of `results` out of `total_size` items.
    pub fn new(request: PageRequest, total_size: u64, results: Vec<T>) -> Self {
        Self {
            total_size,
            total_size_exact: true,
            page: request.page,
            size: u32::try_from(results.len()).unwrap_or(u32::MAX),
            results,
        }
    }

    /// The same page with each item converted.
    pub fn map<U>(self, convert: impl FnMut(T) -> U) -> Page<U> {
        Page {
            total_size: self.total_size,
            total_size_exact: self.total_size_exact,
            page: self.page,
            size: self.size,
            results: self.results.into_iter().map(convert).collect(),
        }
    }
}

/// Every item of a listing, read page by page at [`MAX_PAGE_SIZE`] with `read` (a store's
/// `list_*` call for one page) until a page comes back short.
pub(crate) async fn every_item<T, E, Read, Fut>(mut read: Read) -> Result<Vec<T>, E>
where
    Read: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, E>>,
{
    let mut items = Vec::new();
    let mut page = PageRequest {
        page: 0,
        size: MAX_PAGE_SIZE,
    };
    loop {
        let listed = read(page).await?;
        let done = listed.results.len() < page.size as usize;
        items.extend(listed.results);
        if done {
            return Ok(items);
        }
        page.page += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `totalSizeExact` shows only when the total is a lower bound, and reads back either way.
    #[test]
    fn the_exact_flag_shows_only_when_false() {
        let mut page = Page::new(PageRequest::default(), 3, vec![1, 2, 3]);
        let json = serde_json::to_value(&page).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"totalSize": 3, "page": 0, "size": 3, "results": [1, 2, 3]})
        );
        assert_eq!(serde_json::from_value::<Page<i32>>(json).unwrap(), page);
        page.total_size_exact = false;
        let json = serde_json::to_value(&page).unwrap();
        assert_eq!(json["totalSizeExact"], false);
        assert_eq!(serde_json::from_value::<Page<i32>>(json).unwrap(), page);
    }
}
