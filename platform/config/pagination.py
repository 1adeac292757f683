from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination


class StrictPageNumberPagination(PageNumberPagination):
    """DRF's page-number pagination, but `page` is a whole number or absent, as the schema says.

    DRF reads an empty `page` as page 1 and takes the last of repeated ones; a client that sends
    either has a bug, which an answer of 404 (DRF's answer to any page that does not exist) shows.
    """

    last_page_strings = ()

    def get_page_number(self, request, paginator):
        values = request.query_params.getlist(self.page_query_param)
        if not values:
            return 1
        if len(values) > 1 or not values[0].isdecimal():
            raise NotFound("Invalid page: `page` is a whole number, given once.")
        return values[0]
