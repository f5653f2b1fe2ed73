//This logging is here for testing! Remove before publishing your connectors
DOMO.log('metadata.account.username: ' + metadata.account.username); 
DOMO.log('metadata.account.password: ' + metadata.account.password); 

DOMO.log('metadata.report: ' + metadata.report); // Opportunities

var encodedData = DOMO.b64EncodeUnicode(metadata.account.username + ':' + metadata.account.password);

// Perform work per report
if(metadata.report == 'Opportunities'){
	// Call API Endpoint
	httprequest.addHeader('Authorization', 'Basic ' + encodedData);
	var res = httprequest.get('https://developer.domo.com/samplecrm');

	// Parse Return
	var lines = res.split('\r');
	var header = lines[0].split(',');
	
	// Add Columns. There are three data types: 
    //    datagrid.DATA_TYPE_STRING,
    //    datagrid.DATA_TYPE_DOUBLE and 
    //    datagrid.DATA_TYPE_DATETIME
	datagrid.addColumn('Account.Id', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Account.Industry', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Account.Name', datagrid.DATA_TYPE_STRING); 
	datagrid.addColumn('Amount', datagrid.DATA_TYPE_DOUBLE);
	datagrid.addColumn('CloseDate', datagrid.DATA_TYPE_DATETIME);
	datagrid.addColumn('CreatedDate', datagrid.DATA_TYPE_DATETIME);
	datagrid.addColumn('Id', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('IsClosed', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('IsWon', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('LastActivityDate', datagrid.DATA_TYPE_DATETIME);
	datagrid.addColumn('LastModifiedDate', datagrid.DATA_TYPE_DATETIME);
	datagrid.addColumn('LeadSource', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Name', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('NextStep', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Probability', datagrid.DATA_TYPE_DOUBLE);
	datagrid.addColumn('StageName', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Type', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('ForecastCategoryName', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Strategic_Account__c', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Forecasted_ACV__c', datagrid.DATA_TYPE_DOUBLE);
	datagrid.addColumn('Competitor__c', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Owner.CreatedDate', datagrid.DATA_TYPE_DATETIME);
	datagrid.addColumn('Owner.Email', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Owner.FullPhotoUrl', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Owner.Id', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Owner.IsActive', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Owner.Manager', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Owner.Name', datagrid.DATA_TYPE_STRING);
	datagrid.addColumn('Owner.UserRole.Name', datagrid.DATA_TYPE_STRING);

	// Add Rows
	for(var i = 1; i < lines.length; i++){
		console.log('line: ' +  lines[i]); 
        // For heavy logging, use browser console logging
		var rows = lines[i].split(',');
		// Add cells
		for(var j = 0; j < rows.length; j++){ 
		// Ensure time string in right format. It needs to be yyyy-MM-dd'T'HH:mm:ss
			if (j == 4 || j ==9){
				datagrid.addCell(rows[j] + 'T00:00:00');
			} else {
				datagrid.addCell(rows[j]);
			}
		}
		// Make sure to end the row!
		datagrid.endRow();
	}
} else {
	// Gracefully handle a report error
	DOMO.log(metadata.report + ' is not a supported report.');
	datagrid.error(0, metadata.report + ' is not a supported report.');
}
