module weft.test/httpapp

go 1.19
